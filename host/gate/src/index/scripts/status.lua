-- A repository's state, its dirty tags (none past max_dirty: more means fill again) and its
-- number of tags. Returns {state or false, dirty tags, count}.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local max_dirty = tonumber(ARGV[1])

local state = redis.call('hget', meta, 'state')
local count = redis.call('zcard', names)
local found = {}
if state == 'ready' then
  if redis.call('scard', dirty) > max_dirty then
    state = 'filling'
  else
    found = redis.call('smembers', dirty)
  end
end
return {state or false, found, count}
