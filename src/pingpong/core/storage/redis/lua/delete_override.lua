-- Remove one override.
-- KEYS: overrides hash, expiry zset. ARGV: full key. Returns the old json or "".
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return old or ''
