-- wrk script for benchmarks/serving.py: POST bodies cycled from a file, JSON summary.
-- Usage: wrk ... -s wrk.lua URL -- BODIES_FILE PATH
-- BODIES_FILE holds one JSON body per line; PATH is the request path. done() prints one
-- line "WRK_JSON {...}" with counts, errors and latency percentiles in microseconds.

local bodies = {}
local index = 0
local path = "/"

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  file:close()
  path = args[2]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", path, nil, bodies[index])
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
