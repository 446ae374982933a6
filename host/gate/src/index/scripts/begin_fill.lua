-- Drop what the index holds of a repository and mark it filling.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local expiry_ms = ARGV[1]

redis.call('unlink', tags, names, versions, images, history, dirty, meta)
redis.call('hset', meta, 'state', 'filling', 'read', 0)
redis.call('pexpire', meta, expiry_ms)
return 1
