-- assign_batch.lua -- wrk script: POST /v1/assign for one unit and all
-- running experiments (the 10-experiment batch of `make bench-assign`).
-- bench/assign.sh sets BENCH_BODY (the JSON body) and BENCH_TOKEN (the
-- client token). No request() function: wrk builds the request once, so
-- the Lua costs nothing per request, for arbiter and nginx alike.
wrk.method = "POST"
wrk.path = "/v1/assign"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
