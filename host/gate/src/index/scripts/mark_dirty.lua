-- Mark tags to be read again before the next decision: after the expiry, the tags.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local expiry_ms = ARGV[1]

if not redis.call('hget', meta, 'state') then return 0 end
for i = 2, #ARGV do redis.call('sadd', dirty, ARGV[i]) end
redis.call('pexpire', dirty, expiry_ms)
return 1
