-- Drop a fill that did not finish.
local tags, names, versions, images, history, dirty, meta =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

if redis.call('hget', meta, 'state') == 'filling' then
  redis.call('unlink', tags, names, versions, images, history, dirty, meta)
end
return 1
