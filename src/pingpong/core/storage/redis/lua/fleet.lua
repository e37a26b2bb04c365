-- One replica's heartbeat: KEYS[1] the fleet's sorted set (member: replica id,
-- score: Redis' clock in ms), ARGV[1] this replica's id, ARGV[2] how long a
-- replica counts as alive (ms), ARGV[3] "leave" to leave the fleet.
-- Returns the number of replicas heard from within that time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local alive = tonumber(ARGV[2])
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - alive)
redis.call('PEXPIRE', KEYS[1], alive * 2)
return redis.call('ZCARD', KEYS[1])
