-- Unlist each repository ARGV[i] whose meta key (KEYS[i + 1]) expired. Returns how many.
local repositories = KEYS[1]

local pruned = 0
for i = 1, #ARGV do
  if redis.call('exists', KEYS[i + 1]) == 0 then
    pruned = pruned + redis.call('zrem', repositories, ARGV[i])
  end
end
return pruned
