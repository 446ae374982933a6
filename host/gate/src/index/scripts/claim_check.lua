-- Claim a repository's check if it is still due (its score at most due_ms): move its score
-- to now, so that the other gates see it as checked; a repository whose keys expired leaves
-- the list. Returns 1 when claimed.
local meta, repositories = KEYS[1], KEYS[2]
local repository, now_ms, due_ms = ARGV[1], ARGV[2], ARGV[3]

if redis.call('hget', meta, 'state') ~= 'ready' then
  redis.call('zrem', repositories, repository)
  return 0
end
local score = redis.call('zscore', repositories, repository)
if not score or tonumber(score) > tonumber(due_ms) then return 0 end
redis.call('zadd', repositories, now_ms, repository)
return 1
