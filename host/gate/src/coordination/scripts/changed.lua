-- A change of a repository: bump its generation (which lives a while past the last change)
-- and tell the other replicas. At the end of a holder's change (a token is given), also
-- release its lease and, if its writes were answered, remove its intent: one round trip.
-- Returns the new generation.
local generation_key, lease_key, intent_key = KEYS[1], KEYS[2], KEYS[3]
local channel, repository, generation_ttl_ms = ARGV[1], ARGV[2], ARGV[3]
-- Given only at the end of a holder's change:
local token, answered = ARGV[4], ARGV[5]

local generation = redis.call('incr', generation_key)
redis.call('pexpire', generation_key, generation_ttl_ms)
if token then
  local intent = redis.call('get', intent_key)
  if answered == 'answered' and intent and string.sub(intent, 1, #token + 1) == token .. ' ' then
    redis.call('del', intent_key)
  end
  if redis.call('get', lease_key) == token then redis.call('del', lease_key) end
end
redis.call('publish', channel, repository)
return generation
