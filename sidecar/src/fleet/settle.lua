-- fairgate fleet: settle some of one tenant's buckets in one atomic step, on Redis's
-- own clock (TIME), so that the sidecars' clocks do not matter.
--
-- KEYS[i]: the hash of one bucket, {level, at}; every key of a call carries the
-- tenant's {hash tag}, so on a Redis Cluster they share a slot.
-- ARGV[5i-4 .. 5i]: that bucket's rate (per second), burst, want, debt, give_back.
--
-- Per bucket, as sidecar/src/fleet/bucket.rs: refill by rate × elapsed up to the
-- burst (a missing bucket is full), add back give_back (capped at the burst), charge
-- the debt (the level may go below zero: the refill pays it off), then grant up to
-- `want` whole units of what is there, debited before the grant leaves. The key
-- expires once it would have refilled, since a missing bucket reads as full.
-- Returns, per bucket, {granted, level as a string}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local a = 5 * (i - 1)
  local rate, burst = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local want, debt, give = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  if not (rate and burst and want and debt and give)
      or rate < 0 or burst < 1 or want < 0 or debt < 0 or give < 0 then
    return redis.error_reply('ERR fairgate: bad bucket arguments for ' .. key)
  end
  local state = redis.call('HMGET', key, 'level', 'at')
  local level, at = tonumber(state[1]), tonumber(state[2])
  if level == nil or at == nil then
    level, at = burst, now
  end
  if now > at then
    level = math.min(burst, level + (now - at) * rate / 1000)
    at = now
  end
  level = math.min(burst, level + give) - debt
  local granted = 0
  if want > 0 and level >= 1 then
    granted = math.min(want, math.floor(level))
  end
  level = level - granted
  redis.call('HSET', key, 'level', tostring(level), 'at', string.format('%d', at))
  if rate > 0 then
    redis.call('PEXPIRE', key, math.ceil((burst - level) * 1000 / rate) + 1000)
  end
  out[i] = {granted, tostring(level)}
end
return out
