-- POST a JSON body (BENCH_BODY) with a bearer key (BENCH_TOKEN): POST /api/v1/records.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
