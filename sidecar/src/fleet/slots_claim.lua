-- fairgate fleet: one Envoy's claim on a pool's slots, atomically, on Redis's own
-- clock (TIME). As sidecar/src/fleet/slots.rs `grant`: the claim gets its target, up
-- to the capacity less what every other claim holds and the slots presumed held by
-- live Envoys that have not claimed yet; it then holds the larger of its grant and its
-- floor (what it runs under until the answer reaches it, or has in flight). A claim
-- lapsed for less than the silent period holds the larger of its slots and the outage
-- share (its Envoy may run under that, cut off from its sidecar).
--
-- KEYS[1]: the pool's hash, one field per Envoy: "<until ms>:<held>:<report JSON>".
-- ARGV: envoy, capacity, target, floor, presumed, ttl (ms), report JSON, silent
-- period (ms), outage share.
-- Returns the grant.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local envoy = ARGV[1]
local capacity, target, floor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local presumed, ttl, report = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local silent_ms, share = tonumber(ARGV[8]), tonumber(ARGV[9])
if not (capacity and target and floor and presumed and ttl and report and silent_ms and share)
    or capacity < 0 or target < 0 or floor < 0 or presumed < 0 or ttl <= 0
    or silent_ms < 0 or share < 0 then
  return redis.error_reply('ERR fairgate: bad slot claim for ' .. KEYS[1])
end
local others = 0
local fields = redis.call('HGETALL', KEYS[1])
for j = 1, #fields, 2 do
  if fields[j] ~= envoy then
    local until_ms, held = string.match(fields[j + 1], '^(%d+):(%d+):')
    if not until_ms or tonumber(until_ms) + silent_ms <= now then
      redis.call('HDEL', KEYS[1], fields[j])
    elseif tonumber(until_ms) <= now then
      others = others + math.max(tonumber(held), share)
    else
      others = others + tonumber(held)
    end
  end
end
local room = math.max(0, capacity - others - presumed)
local granted = math.min(target, room)
local held = math.max(granted, floor)
redis.call('HSET', KEYS[1], envoy, string.format('%d:%d:%s', now + ttl, held, report))
if redis.call('PTTL', KEYS[1]) < ttl + silent_ms then
  redis.call('PEXPIRE', KEYS[1], ttl + silent_ms)
end
return granted
