-- Mark a filled repository ready and list it for the background check.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local repositories = KEYS[8]
local expiry_ms, now_ms, repository = ARGV[1], ARGV[2], ARGV[3]

redis.call('hset', meta, 'state', 'ready', 'filled', now_ms)
for i = 1, 7 do redis.call('pexpire', KEYS[i], expiry_ms) end
redis.call('zadd', repositories, now_ms, repository)
return 1
