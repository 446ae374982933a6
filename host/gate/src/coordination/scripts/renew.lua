-- Extend a lease while its holder still has it. Returns 1 when extended, 0 when it is gone.
local lease_key = KEYS[1]
local token, lease_ms = ARGV[1], ARGV[2]

if redis.call('get', lease_key) == token then
  return redis.call('pexpire', lease_key, lease_ms)
end
return 0
