-- fairgate fleet: settle some of one tenant's buckets in one atomic step, on Redis's
-- own clock (TIME), so that the sidecars' clocks do not matter.
--
-- KEYS[i]: the hash of one bucket, {level, at, held}; every key of a call carries the
-- tenant's {hash tag}, so on a Redis Cluster they share a slot.
-- ARGV[8i-7 .. 8i]: that bucket's rate (per second), burst, want, debt, give_back,
-- spent, asker (the asking Envoy's id, "0" for none) and fresh_ms.
--
-- Per bucket, as sidecar/src/fleet/bucket.rs: refill by rate × elapsed up to the
-- burst less what Envoys hold (a missing bucket is full, nothing held); what was spent
-- or handed back is held no more; add back give_back; charge the debt (the level may
-- go below zero: the refill pays it off); then grant up to `want` whole units of what
-- is there, debited before the grant leaves and held from then on: all of it while
-- the level covers every Envoy's ask, else this ask's share of the level among the
-- unmet asks of the last fresh_ms (fields "ask:<asker>" = "unmet:at:since", since:
-- when it was last granted anything); where that is under one unit each, the unit
-- goes to the asker that has waited longest. The key expires
-- once it would have refilled with nothing held (an hour while something is held, so
-- a sidecar lost with its holdings costs the fleet that share for an hour at most),
-- since a missing bucket reads as full.
-- Returns, per bucket, {granted, level as a string}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local a = 8 * (i - 1)
  local rate, burst = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local want, debt, give = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local spent, asker, fresh = tonumber(ARGV[a + 6]), ARGV[a + 7], tonumber(ARGV[a + 8])
  if not (rate and burst and want and debt and give and spent and asker and fresh)
      or rate < 0 or burst < 1 or want < 0 or debt < 0 or give < 0 or spent < 0 then
    return redis.error_reply('ERR fairgate: bad bucket arguments for ' .. key)
  end
  local state = redis.call('HMGET', key, 'level', 'at', 'held')
  local level, at, held = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
  if level == nil or at == nil then
    level, at = burst, now
  end
  if held == nil then
    held = 0
  end
  if now > at then
    level = math.min(burst - held, level + (now - at) * rate / 1000)
    at = now
  end
  held = math.max(0, held - spent - give)
  level = math.min(burst - held, level + give) - debt
  local others, mine = 0, now
  local oldest = nil
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    local who = string.match(fields[j], '^ask:(.+)$')
    if who then
      local unmet, at, since = string.match(fields[j + 1], '^(%d+):(%d+):(%d+)$')
      if not unmet or now - tonumber(at) > fresh then
        redis.call('HDEL', key, fields[j])
      elseif who == asker then
        mine = tonumber(since)
        redis.call('HDEL', key, fields[j])
      else
        others = others + tonumber(unmet)
        if oldest == nil or tonumber(since) < oldest then
          oldest = tonumber(since)
        end
      end
    end
  end
  local granted = 0
  if want > 0 and level >= 1 then
    local all = math.floor(level)
    local share = want
    if want + others > all then
      -- Less than one unit each: the unit goes to whoever has waited longest.
      share = math.floor(level * want / (want + others))
      if share == 0 and (oldest == nil or mine <= oldest) then
        share = 1
      end
    end
    granted = math.min(want, share, all)
  end
  level = level - granted
  held = held + granted
  if asker ~= '0' and want > granted then
    if granted > 0 then
      mine = now
    end
    redis.call('HSET', key, 'ask:' .. asker,
      string.format('%d:%d:%d', want - granted, now, mine))
  end
  redis.call('HSET', key, 'level', tostring(level), 'at', string.format('%d', at),
    'held', tostring(held))
  if held > 0 then
    redis.call('PEXPIRE', key, 3600000)
  elseif rate > 0 then
    redis.call('PEXPIRE', key, math.ceil((burst - level) * 1000 / rate) + 1000)
  end
  out[i] = {granted, tostring(level)}
end
return out
