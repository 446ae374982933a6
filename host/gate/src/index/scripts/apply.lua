-- Record what a write did: the stamp (seconds, nanoseconds, whether there is an actor, the
-- actor), then (tag, 'set' or 'del', digest, version key) each. A tag that keeps its digest
-- keeps its history; a moved one keeps its creation.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local expiry_ms, seconds, nanoseconds, has_actor, actor_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('hget', meta, 'state') ~= 'ready' then return 0 end
local actor = cjson.null
if has_actor == 'actor' then actor = actor_id end
local stamp = {tonumber(seconds), tonumber(nanoseconds), actor}
for i = 6, #ARGV, 4 do
  local tag, operation, digest, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local old = redis.call('hget', tags, tag)
  redis.call('srem', dirty, tag)
  if operation == 'del' then
    if old then
      redis.call('hdel', tags, tag)
      redis.call('zrem', names, tag)
      redis.call('zrem', versions, version)
      redis.call('zrem', images, old .. ' ' .. tag)
      redis.call('hdel', history, tag)
    end
  elseif old ~= digest then
    local created = stamp
    if old then
      redis.call('zrem', images, old .. ' ' .. tag)
      created = nil
      local recorded = redis.call('hget', history, tag)
      if recorded then
        local known = cjson.decode(recorded).k
        if known ~= cjson.null then created = known end
      end
    end
    redis.call('hset', tags, tag, digest)
    redis.call('zadd', names, 0, tag)
    redis.call('zadd', versions, 0, version)
    redis.call('zadd', images, 0, digest .. ' ' .. tag)
    redis.call('hset', history, tag, cjson.encode({c = stamp, k = created}))
  end
end
for i = 1, 7 do redis.call('pexpire', KEYS[i], expiry_ms) end
return 1
