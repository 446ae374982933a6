-- Record an intent to write, only while the lease is still the holder's; the intent lives one
-- lock delay. Returns 1 when recorded, 0 when the lease is gone.
local lease_key, intent_key = KEYS[1], KEYS[2]
local token, what, lock_delay_ms = ARGV[1], ARGV[2], ARGV[3]

if redis.call('get', lease_key) == token then
  redis.call('set', intent_key, token .. ' ' .. what, 'PX', lock_delay_ms)
  return 1
end
return 0
