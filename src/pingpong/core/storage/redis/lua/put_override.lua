-- Store a batch of overrides and announce them, all or nothing, in one round trip.
-- KEYS: overrides hash, expiry zset, seq, log.
-- ARGV: now, bound, the entries the log keeps, the channel, then per override:
--       full key, json, expires at.
-- Drops the expired overrides first. Returns {0} (nothing stored) when the
-- batch would take the hash past the bound, else {1, seq, old json or "" per
-- override}. Each key announced gets its own sequence number and log entry
-- (as announce.lua), and one message says something changed.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, k in ipairs(expired) do redis.call('HDEL', KEYS[1], k) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local old, added = {}, 0
for i = 5, #ARGV, 3 do
  local found = redis.call('HGET', KEYS[1], ARGV[i])
  if not found then added = added + 1 end
  old[#old + 1] = found or ''
end
if added > 0 and redis.call('HLEN', KEYS[1]) + added > tonumber(ARGV[2]) then return {0} end
local seq
for i = 5, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  seq = redis.call('INCR', KEYS[3])
  redis.call('LPUSH', KEYS[4], seq .. ' ' .. ARGV[i])
end
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
-- Best effort, as for any announcement: every replica also polls seq (an ACL
-- user without rights on the channel cannot publish).
redis.pcall('PUBLISH', ARGV[4], seq)
local answer = {1, seq}
for i = 1, #old do answer[#answer + 1] = old[i] end
return answer
