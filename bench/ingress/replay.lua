-- wrk script: replay pre-signed, distinct Slack Events API requests (see gen_events.py).
--
--   wrk -t1 -c32 -d20s --latency -s bench/ingress/replay.lua http://127.0.0.1:18082/slack/events \
--       -- /tmp/events.tsv 1
--
-- Arguments after "--": the events file (timestamp<TAB>signature<TAB>body per line) and the
-- number of wrk threads (-t). Thread k loads lines k, k+T, k+2T, ... so threads never share an
-- event. Requests are formatted once at start-up; request() only returns the next string.
-- No event is ever sent twice: when a thread runs out of events it sends GET /__exhausted
-- instead (a 404 on both servers, counted in "exhausted"); run.py treats that as an invalid run.
-- done() prints one line starting with "RESULT " followed by JSON.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs = {}
local n, i = 0, 0
sent, exhausted, loaded = 0, 0, 0
local exhausted_req

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2] or "1")
  if not file then error("usage: wrk ... -s replay.lua URL -- EVENTS_FILE NTHREADS") end
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == tid then
      local a = line:find("\t", 1, true)
      local b = line:find("\t", a + 1, true)
      n = n + 1
      reqs[n] = wrk.format("POST", wrk.path, {
        ["Content-Type"] = "application/json",
        ["X-Slack-Request-Timestamp"] = line:sub(1, a - 1),
        ["X-Slack-Signature"] = line:sub(a + 1, b - 1),
      }, line:sub(b + 1))
    end
    k = k + 1
  end
  loaded = n
  exhausted_req = wrk.format("GET", "/__exhausted")
end

function request()
  if i < n then
    i = i + 1
    sent = sent + 1
    return reqs[i]
  end
  exhausted = exhausted + 1
  return exhausted_req
end

function done(summary, latency, requests)
  local s, e, l = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    e = e + t:get("exhausted")
    l = l + t:get("loaded")
  end
  local secs = summary.duration / 1e6
  local errs = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"sent":%d,"exhausted":%d,"loaded":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    errs.status, errs.connect, errs.read, errs.write, errs.timeout,
    s, e, l))
end
