-- Constant-rate pacing for wrk (wrk2 is not packaged in Debian).
-- Usage: wrk -t1 -c32 -d5s --latency -s pace.lua URL -- <requests per second>
-- One thread: every connection takes the next slot of one global schedule
-- (start + k/rate); delay() waits until that slot, so the offered rate is
-- fixed and a connection that fell behind catches up at once (open loop,
-- up to the number of connections in flight). The clock is CLOCK_MONOTONIC
-- through LuaJIT's FFI. wrk still times each request from its actual send,
-- so latency is not corrected for coordinated omission as wrk2 would do.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = 1
local next_slot = nil

function init(args)
  interval = 1000 / tonumber(args[1])
end

function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + interval
  if slot <= now then return 0 end
  return slot - now
end
