-- Store one override, dropping the expired ones first.
-- KEYS: overrides hash, expiry zset. ARGV: full key, json, expires at, now, bound.
-- Returns {1, old json or ""}, or {0, ""} when the bound is reached.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for _, k in ipairs(expired) do redis.call('HDEL', KEYS[1], k) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {0, ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {1, old or ''}
