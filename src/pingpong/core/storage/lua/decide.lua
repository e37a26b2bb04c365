-- pingpong: all-or-nothing rate-limit decisions for a batch of requests.
-- Mirrors pingpong/core/algorithms.py (integer microseconds, Redis clock).
--
-- ARGV[1] = "acquire" | "refund"
-- ARGV[2] = the batch's checks, one string (packing many small arguments costs
--           the client more than parsing one costs Redis): requests separated
--           by "|", each a list of "algorithm,interval_us,capacity,shadow;"
--           with algorithm 1 gcra, 2 sliding window, 3 fixed window.
-- KEYS holds the checks' keys in the same order.
-- Returns 4 integers per check: admitted (0/1), remaining, reset_us, retry_us.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function ms(us)
  local v = math.ceil(us / 1000)
  if v < 1 then v = 1 end
  return v
end

local function fmt(n) return string.format('%d', n) end

-- Each decider returns admitted, remaining, reset_us, retry_us, commit function.
local function gcra(key, interval, capacity)
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - capacity * interval
  if now < allow_at then
    return 0, 0, tat - now, allow_at - now, nil
  end
  return 1, math.floor((now - allow_at) / interval), new_tat - now, 0, function()
    redis.call('SET', key, fmt(new_tat), 'PX', ms(new_tat - now))
  end
end

local function fixed(key, window, capacity)
  local count = tonumber(redis.call('GET', key)) or 0
  local start = now - now % window
  local reset = start + window - now
  if count >= capacity then
    return 0, 0, reset, reset, nil
  end
  return 1, capacity - count - 1, reset, 0, function()
    if redis.call('INCR', key) == 1 then
      redis.call('PEXPIRE', key, ms(reset))
    end
  end
end

local function sliding(key, window, capacity)
  local start = now - now % window
  local prev, cur = 0, 0
  local s = redis.call('HMGET', key, 's', 'p', 'c')
  if s[1] then
    local state_start = tonumber(s[1])
    if state_start == start then
      prev, cur = tonumber(s[2]), tonumber(s[3])
    elseif state_start + window == start then
      prev = tonumber(s[3])
    end
  end
  local elapsed = now - start
  local used = prev * (window - elapsed) + cur * window
  if used + window > capacity * window then
    local retry
    local earliest = window
    if cur + 1 <= capacity and prev > 0 then
      earliest = window - math.floor(((capacity - cur - 1) * window) / prev)
    end
    if earliest < window then
      retry = earliest - elapsed
    else
      local next_e = 0
      if cur > 0 then next_e = window - math.floor(((capacity - 1) * window) / cur) end
      if next_e < 0 then next_e = 0 end
      retry = window - elapsed + next_e
    end
    return 0, 0, window - elapsed, retry, nil
  end
  local remaining = math.floor((capacity * window - used - window) / window)
  return 1, remaining, window - elapsed, 0, function()
    redis.call('HSET', key, 's', fmt(start), 'p', fmt(prev), 'c', fmt(cur + 1))
    redis.call('PEXPIRE', key, ms(start + 2 * window - now))
  end
end

local deciders = {gcra, sliding, fixed}

-- Undo one admitted request (Redis Cluster: used when a later slot rejects).
local function refund(key, alg, interval)
  if alg == 1 then
    local tat = tonumber(redis.call('GET', key))
    if tat ~= nil and tat - interval > now then
      redis.call('SET', key, fmt(tat - interval), 'PX', ms(tat - interval - now))
    elseif tat ~= nil then
      redis.call('DEL', key)
    end
  elseif alg == 2 then
    local c = tonumber(redis.call('HGET', key, 'c'))
    if c ~= nil and c > 0 then redis.call('HSET', key, 'c', fmt(c - 1)) end
  else
    local c = tonumber(redis.call('GET', key))
    if c ~= nil and c > 0 then redis.call('DECR', key) end
  end
end

local out = {}
local keyi = 1
for request in string.gmatch(ARGV[2], '[^|]+') do
  local commits, blocked = {}, false
  for alg, interval, capacity, shadow in string.gmatch(request, '(%d),(%d+),(%d+),(%d);') do
    alg, interval, capacity = tonumber(alg), tonumber(interval), tonumber(capacity)
    local key = KEYS[keyi]
    keyi = keyi + 1
    if ARGV[1] == 'refund' then
      refund(key, alg, interval)
      out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
    else
      local admitted, remaining, reset, retry, commit = deciders[alg](key, interval, capacity)
      out[#out + 1] = admitted
      out[#out + 1] = remaining
      out[#out + 1] = reset
      out[#out + 1] = retry
      if commit then
        commits[#commits + 1] = commit
      elseif shadow == '0' then
        blocked = true
      end
    end
  end
  if not blocked then
    for i = 1, #commits do commits[i]() end
  end
end
return out
