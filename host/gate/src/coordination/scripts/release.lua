-- Release a lease if its holder still has it. Returns 1 when released.
local lease_key = KEYS[1]
local token = ARGV[1]

if redis.call('get', lease_key) == token then
  return redis.call('del', lease_key)
end
return 0
