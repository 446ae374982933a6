-- Take the lease on a repository if it is free.
-- Returns {1, intent_left_ms, quiet_left_ms, generation} when taken (what is left of an
-- intent or a quiet period, and the repository's generation); {0, lease_left_ms, 0, 0} when
-- another holds it; {-1, 0, 0, 0} when the store holds other settings; {-2, 0, 0, 0} when it
-- holds none (it lost its data: register again).
local lease_key, intent_key, quiet_key, settings_key, generation_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, lease_ms, ours = ARGV[1], ARGV[2], ARGV[3]

local settings = redis.call('get', settings_key)
if not settings then return {-2, 0, 0, 0} end
if settings ~= ours then return {-1, 0, 0, 0} end
if redis.call('set', lease_key, token, 'NX', 'PX', lease_ms) then
  local generation = tonumber(redis.call('get', generation_key) or '0')
  return {1, redis.call('pttl', intent_key), redis.call('pttl', quiet_key), generation}
end
return {0, redis.call('pttl', lease_key), 0, 0}
