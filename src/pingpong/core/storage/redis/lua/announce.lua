-- Record a change: a new sequence number, and one log entry per key changed.
-- KEYS: seq, log. ARGV: the entries the log keeps, then the keys changed.
-- Returns the new sequence number.
local seq = redis.call('INCR', KEYS[1])
for i = 2, #ARGV do redis.call('LPUSH', KEYS[2], seq .. ' ' .. ARGV[i]) end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
return seq
