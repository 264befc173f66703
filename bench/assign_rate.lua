-- assign_rate.lua -- wrk script for `make bench-assign`: one request kind
-- (GET one experiment, or the POST batch), optionally paced, and a report
-- of the latency percentiles wrk's --latency leaves out (p99.9).
--
-- Environment (bench/assign.sh sets it):
--   BENCH_KIND    get | batch | ofrep (POST /ofrep/v1/evaluate/flags/exp-0,
--                 the same unit and attributes as the batch)
--   BENCH_TOKEN   client token
--   BENCH_BODY    the batch body (batch only)
--   BENCH_RATE    target requests/s over all connections; 0 or unset:
--                 unpaced (each connection sends its next request as soon
--                 as the answer arrives: the server's maximum)
--   BENCH_CONNS   connections (wrk -c), to pace each connection
--
-- Pacing: wrk's delay() hook holds a connection for the returned number of
-- milliseconds after an answer before it sends the next request. Each
-- connection is given a think time of CONNS / RATE seconds; wrk's timers
-- have millisecond resolution, so the per-thread accumulator below hands
-- out whole milliseconds that average to the exact value. The offered
-- rate is then close to RATE when latencies are small against the think
-- time (the report gives the rate reached). This is a closed loop with
-- think time, not wrk2's open loop: a stalled server also slows the
-- client, so a stall shows up as one slow request per connection rather
-- than as the queue behind it (no coordinated-omission correction).
local kind = os.getenv("BENCH_KIND") or "get"
local token = os.getenv("BENCH_TOKEN") or ""
local rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0
local conns = tonumber(os.getenv("BENCH_CONNS") or "64") or 64

wrk.headers["Authorization"] = "Bearer " .. token
if kind == "batch" then
    wrk.method = "POST"
    wrk.path = "/v1/assign"
    wrk.body = os.getenv("BENCH_BODY")
    wrk.headers["Content-Type"] = "application/json"
elseif kind == "ofrep" then
    wrk.method = "POST"
    wrk.path = "/ofrep/v1/evaluate/flags/exp-0"
    wrk.body = '{"context":{"targetingKey":"user-4242","country":"de",' ..
        '"app_version":"3.2.1"}}'
    wrk.headers["Content-Type"] = "application/json"
else
    wrk.method = "GET"
    wrk.path = "/v1/assign?experiment=exp-0&unit=user-4242"
end

local think_ms = 0
if rate > 0 then
    think_ms = conns * 1000.0 / rate
end
local acc = 0.0

if think_ms > 0 then
    function delay()
        acc = acc + think_ms
        local d = math.floor(acc)
        acc = acc - d
        return d
    end
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        "RESULT rps=%.0f p50=%d p90=%d p99=%d p999=%d max=%d n=%d " ..
        "errors=%d status=%d timeouts=%d\n",
        summary.requests / secs, latency:percentile(50),
        latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, summary.requests,
        e.connect + e.read + e.write, e.status, e.timeout))
end
