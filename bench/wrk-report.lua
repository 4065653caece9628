-- wrk script for bench/benchlib.py: sets the request from the environment
-- (WRK_METHOD, WRK_BODY) and prints one JSON line after the run with every
-- error wrk counted, the latency distribution (microseconds) and, with
-- WRK_COUNT_STATUSES=1, the count of each status (parsing every answer costs
-- throughput, so throughput runs leave it off).
local method = os.getenv("WRK_METHOD")
local body = os.getenv("WRK_BODY")
if method and method ~= "" then wrk.method = method end
if body and body ~= "" then
  wrk.body = body
  if not wrk.headers["Content-Type"] then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

statuses = {}
if os.getenv("WRK_COUNT_STATUSES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen then
      for status, count in pairs(seen) do counts[status] = (counts[status] or 0) + count end
    end
  end
  local parts = {}
  for status, count in pairs(counts) do table.insert(parts, string.format('"%d":%d', status, count)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_REPORT {"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d},"statuses":{%s}}\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, table.concat(parts, ",")))
end
