-- Set a tag to what a lookup found: its digest, or absent when none is given; its history is
-- then unknown. Returns 1 if that changed the index.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local tag, version, digest = ARGV[1], ARGV[2], ARGV[3]

if redis.call('hget', meta, 'state') ~= 'ready' then return 0 end
redis.call('srem', dirty, tag)
local old = redis.call('hget', tags, tag)
if old == (digest or false) then return 0 end
if old then redis.call('zrem', images, old .. ' ' .. tag) end
redis.call('hdel', history, tag)
if not digest then
  redis.call('hdel', tags, tag)
  redis.call('zrem', names, tag)
  redis.call('zrem', versions, version)
else
  redis.call('hset', tags, tag, digest)
  redis.call('zadd', names, 0, tag)
  redis.call('zadd', versions, 0, version)
  redis.call('zadd', images, 0, digest .. ' ' .. tag)
end
return 1
