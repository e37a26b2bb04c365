-- pingpong: all-or-nothing rate-limit decisions for a batch of requests.
-- Mirrors pingpong/core/algorithms.py (integer microseconds, Redis clock).
--
-- ARGV[1] = "acquire" | "refund" | "peek" (decide, never write)
-- ARGV[2] = the batch's checks, one string (packing many small arguments costs
--           the client more than parsing one costs Redis): requests separated
--           by "|", each a list of "algorithm,interval_us,capacity,shadow;"
--           with algorithm 1 gcra, 2 sliding window, 3 fixed window.
-- KEYS holds the checks' keys in the same order.
-- Returns 4 integers per check: admitted (0/1), remaining, reset_us, retry_us.
--
-- Every key is one string "<algorithm>,<interval_us>,<capacity>:<values>": the
-- limit it was written under, then its state (gcra: TAT; fixed: end,count;
-- sliding: end,previous,current). A state written under another limit is
-- translated (the requests it still counts, capped at the new quota), so a
-- policy change never errors, never refills a quota, never over-waits.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function ms(us)
  local v = math.ceil(us / 1000)
  if v < 1 then v = 1 end
  return v
end

local function fmt(n) return string.format('%d', n) end

local function usage(alg, interval, x, y, z)
  if alg == 1 then
    if x > now then return math.ceil((x - now) / interval) end
    return 0
  elseif alg == 3 then
    if x > now then return y end
    return 0
  end
  local start = now - now % interval
  local state_start = x - 2 * interval
  local elapsed = now - start
  if state_start == start then
    return math.ceil(y * (interval - elapsed) / interval) + z
  elseif state_start + interval == start then
    return math.ceil(z * (interval - elapsed) / interval)
  end
  return 0
end

-- The key's state in this limit's terms: up to three numbers, or nil.
local function read(key, tag, alg, interval, capacity)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' then  -- not a string: not ours to read
    redis.call('DEL', key)
    return nil
  end
  if not value then return nil end
  local old_tag, x, y, z = string.match(value, '^([%d,]+):(%-?%d+),?(%d*),?(%d*)$')
  if not old_tag then return nil end
  x, y, z = tonumber(x), tonumber(y), tonumber(z)
  if old_tag == tag then return x, y, z end
  local old_alg, old_interval = string.match(old_tag, '^(%d),(%d+),')
  local used = usage(tonumber(old_alg), tonumber(old_interval), x, y, z)
  if used > capacity then used = capacity end
  if used <= 0 then return nil end
  local start = now - now % interval
  if alg == 1 then return now + used * interval end
  if alg == 3 then return start + interval, used end
  return start + 2 * interval, 0, used
end

-- Each decider returns admitted, remaining, reset_us, retry_us, the new value.
local function gcra(tag, interval, capacity, tat)
  if tat == nil or tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - capacity * interval
  if now < allow_at then
    return 0, 0, tat - now, allow_at - now, nil
  end
  return 1, math.floor((now - allow_at) / interval), new_tat - now, 0,
    {tag .. ':' .. fmt(new_tat), new_tat - now}
end

local function fixed(tag, window, capacity, state_end, count)
  if state_end == nil or state_end <= now then
    state_end, count = now - now % window + window, 0
  end
  if count >= capacity then
    return 0, 0, state_end - now, state_end - now, nil
  end
  return 1, capacity - count - 1, state_end - now, 0,
    {tag .. ':' .. fmt(state_end) .. ',' .. fmt(count + 1), state_end - now}
end

local function sliding(tag, window, capacity, state_end, prev_in, cur_in)
  local start = now - now % window
  local prev, cur = 0, 0
  if state_end ~= nil then
    local state_start = state_end - 2 * window
    if state_start == start then
      prev, cur = prev_in, cur_in
    elseif state_start + window == start then
      prev = cur_in
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
    local reset = window - elapsed
    if cur > 0 then reset = 2 * window - elapsed end
    return 0, 0, reset, retry, nil
  end
  local remaining = math.floor((capacity * window - used - window) / window)
  local value = tag .. ':' .. fmt(start + 2 * window) .. ',' .. fmt(prev) .. ',' .. fmt(cur + 1)
  return 1, remaining, 2 * window - elapsed, 0, {value, start + 2 * window - now}
end

local deciders = {gcra, sliding, fixed}

-- Undo one admitted request (Redis Cluster: used when a later slot rejects).
local function refund(key, tag, alg, interval, capacity)
  local x, y, z = read(key, tag, alg, interval, capacity)
  if x == nil then return end
  if alg == 1 then
    if x - interval > now then
      redis.call('SET', key, tag .. ':' .. fmt(x - interval), 'PX', ms(x - interval - now))
    else
      redis.call('DEL', key)
    end
  elseif alg == 3 and y > 0 and x > now then
    redis.call('SET', key, tag .. ':' .. fmt(x) .. ',' .. fmt(y - 1), 'PX', ms(x - now))
  elseif alg == 2 and z > 0 and x > now then
    local value = tag .. ':' .. fmt(x) .. ',' .. fmt(y) .. ',' .. fmt(z - 1)
    redis.call('SET', key, value, 'PX', ms(x - now))
  end
end

local mode = ARGV[1]
local out = {}
local keyi = 1
for request in string.gmatch(ARGV[2], '[^|]+') do
  local writes, blocked = {}, false
  for tag, alg, interval, capacity, shadow in
      string.gmatch(request, '((%d),(%d+),(%d+)),(%d);') do
    alg, interval, capacity = tonumber(alg), tonumber(interval), tonumber(capacity)
    local key = KEYS[keyi]
    keyi = keyi + 1
    if mode == 'refund' then
      refund(key, tag, alg, interval, capacity)
      out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
    else
      local x, y, z = read(key, tag, alg, interval, capacity)
      local admitted, remaining, reset, retry, write =
        deciders[alg](tag, interval, capacity, x, y, z)
      out[#out + 1] = admitted
      out[#out + 1] = remaining
      out[#out + 1] = reset
      out[#out + 1] = retry
      if write then
        writes[#writes + 1] = {key, write}
      elseif shadow == '0' then
        blocked = true
      end
    end
  end
  if not blocked and mode == 'acquire' then
    for i = 1, #writes do
      redis.call('SET', writes[i][1], writes[i][2][1], 'PX', ms(writes[i][2][2]))
    end
  end
end
return out
