-- POST one JSON body (file named after "--") on every request; print the results as JSON.
-- wrk -t1 -c8 -d10s --latency -s bench/wrk_post.lua http://127.0.0.1:PORT/path -- body.json

local request_bytes

function init(args)
  local file = assert(io.open(args[1], "rb"), "cannot open the body file")
  local body = file:read("*a")
  file:close()
  local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}
  request_bytes = wrk.format("POST", nil, headers, body)
end

function request()
  return request_bytes
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.3f, ' ..
    '"p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
