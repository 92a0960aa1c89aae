-- fairgate fleet: the claims on one pool's slots, on Redis's own clock (TIME).
--
-- KEYS[1]: the pool's hash, one field per Envoy: "<until ms>:<held>:<report JSON>".
-- ARGV[1]: how long a lapsed claim stays silent (ms): its Envoy, cut off from its
-- sidecar, may still run under its outage share. Claims lapsed longer are forgotten.
-- Returns {envoy, held, silent (0/1), report, ...}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local silent_ms = tonumber(ARGV[1])
if not silent_ms or silent_ms < 0 then
  return redis.error_reply('ERR fairgate: bad silent period for ' .. KEYS[1])
end
local out = {}
local fields = redis.call('HGETALL', KEYS[1])
for j = 1, #fields, 2 do
  local until_ms, held, report = string.match(fields[j + 1], '^(%d+):(%d+):(.*)$')
  if not until_ms or tonumber(until_ms) + silent_ms <= now then
    redis.call('HDEL', KEYS[1], fields[j])
  else
    out[#out + 1] = fields[j]
    out[#out + 1] = held
    out[#out + 1] = tonumber(until_ms) <= now and '1' or '0'
    out[#out + 1] = report
  end
end
return out
