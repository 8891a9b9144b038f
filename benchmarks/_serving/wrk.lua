-- wrk script for benchmarks/serving.py: POST bodies cycled from a file, JSON summary.
-- Usage: wrk ... -s wrk.lua URL -- BODIES_FILE PATH [LATENCY_FILE]
-- BODIES_FILE holds one JSON body per line; PATH is the request path. done() prints one
-- line "WRK_JSON {...}" with counts, errors and latency percentiles in microseconds.
--
-- wrk's own percentiles are "corrected" for coordinated omission: after the run it adds
-- synthetic samples for every response slower than twice the mean interval (a 60 ms
-- stall at 6,000 req/s adds about 360 samples between 0.17 and 60 ms). At concurrency 1
-- that turns a few stalls into a p99 of tens of ms, and the mean times the request count
-- exceeds the run's duration. With LATENCY_FILE (one connection only: the Lua state is
-- shared by a thread's connections) each response's recorded latency, request written to
-- response read, is appended to it in microseconds, one per line, for the real figures.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clk_id, wrk_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now = ffi.new("wrk_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
  return tonumber(now.tv_sec) * 1000000 + tonumber(now.tv_nsec) / 1000
end

local bodies = {}
local index = 0
local path = "/"
local out = nil
local sent = nil

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  file:close()
  path = args[2]
  if args[3] then
    out = assert(io.open(args[3], "w"))
    out:setvbuf("full", 65536) -- flushed at exit, after done()
  end
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index % #bodies + 1
  if out then
    sent = now_us()
  end
  return wrk.format("POST", path, nil, bodies[index])
end

function response(status, headers, body)
  if out and sent then
    out:write(string.format("%.1f\n", now_us() - sent))
    sent = nil
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "mean_us": %.1f, '
      .. '"stdev_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout
  ))
end
