-- fairgate fleet: the live claims on one pool's slots, on Redis's own clock (TIME).
--
-- KEYS[1]: the pool's hash, one field per Envoy: "<until ms>:<held>:<report JSON>".
-- Forgets the lapsed claims; returns {envoy, held, report, envoy, held, report, ...}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
local fields = redis.call('HGETALL', KEYS[1])
for j = 1, #fields, 2 do
  local until_ms, held, report = string.match(fields[j + 1], '^(%d+):(%d+):(.*)$')
  if not until_ms or tonumber(until_ms) <= now then
    redis.call('HDEL', KEYS[1], fields[j])
  else
    out[#out + 1] = fields[j]
    out[#out + 1] = held
    out[#out + 1] = report
  end
end
return out
