-- assign_get.lua -- wrk script: GET /v1/assign for one experiment and one
-- unit, with the client token from BENCH_TOKEN (no request() function:
-- wrk builds the request once).
wrk.method = "GET"
wrk.path = "/v1/assign?experiment=exp-0&unit=user-4242"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
