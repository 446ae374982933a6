-- Create the settings record if the store has none, and then make every gate wait one lock
-- delay (an empty store may have lost an intent); or check ours against it and keep it alive.
-- Returns {1, false} when it created the record, {0, false} when ours matched, and
-- {-1, theirs} when the store holds other settings.
local settings_key, quiet_key = KEYS[1], KEYS[2]
local ours, settings_ttl_ms, lock_delay_ms = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('get', settings_key)
if not current then
  redis.call('set', settings_key, ours, 'PX', settings_ttl_ms)
  redis.call('set', quiet_key, '1', 'PX', lock_delay_ms, 'NX')
  return {1, false}
elseif current == ours then
  redis.call('pexpire', settings_key, settings_ttl_ms)
  return {0, false}
end
return {-1, current}
