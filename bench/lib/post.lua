-- wrk script for bench/ingress: POSTs to the path given as wrk's URL, with
-- no body. BENCH_KEYS (space-separated API keys, may be empty) are used in
-- turn, one per request, like several clients. done() prints one line
-- bench/ingress parses:
--   WRK requests=N non2xx=N errors=N seconds=S rps=R p50_ms=X p99_ms=Y max_ms=Z
local keys = {}
for k in string.gmatch(os.getenv("BENCH_KEYS") or "", "%S+") do
  keys[#keys + 1] = k
end

local reqs = {}
local i = 0

function init(args)
  if #keys == 0 then
    reqs[1] = wrk.format("POST", nil, {["Content-Length"] = "0"}, nil)
  else
    for n, k in ipairs(keys) do
      reqs[n] = wrk.format("POST", nil,
        {["Authorization"] = "Bearer " .. k, ["Content-Length"] = "0"}, nil)
    end
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK requests=%d non2xx=%d errors=%d seconds=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, e.status, errors, secs,
    (summary.requests - e.status) / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
