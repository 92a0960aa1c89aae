-- fairgate fleet: the live Envoys, on Redis's own clock (TIME).
--
-- KEYS[1]: a sorted set of Envoys scored by when their heartbeat lapses (ms).
-- ARGV[1]: the heartbeat's lifetime (ms); ARGV[2..]: Envoys to mark live now.
-- Forgets the lapsed ones and returns how many are live.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
if not ttl or ttl <= 0 then
  return redis.error_reply('ERR fairgate: bad heartbeat lifetime')
end
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZCARD', KEYS[1])
if live > 0 then
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
end
return live
