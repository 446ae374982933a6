-- Add tags read by a fill: after the expiry, (tag, digest, version key) triples. Does
-- nothing unless the repository is still filling.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local expiry_ms = ARGV[1]

if redis.call('hget', meta, 'state') ~= 'filling' then return 0 end
for i = 2, #ARGV, 3 do
  local tag, digest, version = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('hset', tags, tag, digest)
  redis.call('zadd', names, 0, tag)
  redis.call('zadd', versions, 0, version)
  redis.call('zadd', images, 0, digest .. ' ' .. tag)
end
redis.call('hincrby', meta, 'read', (#ARGV - 1) / 3)
for i = 1, 7 do redis.call('pexpire', KEYS[i], expiry_ms) end
return 1
