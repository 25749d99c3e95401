-- wrk script for bench/daemon.mjs: POST /v1/events with unique ids, or GET
-- /healthz, counting the answers by status so the bench can compare the 202s
-- wrk saw with the rows the daemon committed.
--
-- Environment: BENCH_MODE single | batch | healthz; BENCH_BATCH (events per
-- request in batch mode); BENCH_RUN (unique per wrk run: ids are
-- RUN-THREAD-N); BENCH_API_KEY.
local mode = os.getenv("BENCH_MODE") or "single"
local batch = tonumber(os.getenv("BENCH_BATCH") or "100")
local run = os.getenv("BENCH_RUN") or "r"
local key = os.getenv("BENCH_API_KEY") or ""

local threads = {}
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end

-- Globals, not locals: done() reads each thread's counters with thread:get().
n = 0
ok = 0
other = 0
local prefix
-- Every event the same time of occurrence: the journeys they start are all
-- due an hour after the bench began, never during it.
local occurred = os.date("!%Y-%m-%dT%H:%M:%SZ")

function init(args)
  prefix = run .. "-" .. tostring(tid)
  if mode == "healthz" then
    wrk.method = "GET"
    wrk.path = "/healthz"
  else
    wrk.method = "POST"
    wrk.path = "/v1/events"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end

-- A cart of one product by a customer nobody else is: each event starts its
-- own abandoned-cart journey (the scenario keys journeys by cart and has a
-- per-person re-entry cooldown).
local function event()
  n = n + 1
  local id = prefix .. "-" .. n
  return '{"id":"' .. id .. '","type":"cart_updated","customer_id":"' .. id .. '","occurred_at":"' .. occurred ..
         '","properties":{"cart_id":"' .. id .. '","items":[{"product_id":"p' .. (n % 1000) ..
         '","quantity":1}],"total":49.9,"currency":"EUR"}}'
end

function request()
  if mode == "healthz" then return wrk.format() end
  if mode == "single" then return wrk.format(nil, nil, nil, event()) end
  local parts = {}
  for i = 1, batch do parts[i] = event() end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
  if (mode == "healthz" and status == 200) or (mode ~= "healthz" and status == 202) then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
  end
  io.write(string.format(
    'BENCHJSON {"mode":"%s","batch":%d,"ok":%d,"other":%d,"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    mode, mode == "batch" and batch or 1, total_ok, total_other, summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
