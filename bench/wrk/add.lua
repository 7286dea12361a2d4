-- The mutation scenario: POST /trpc/bench.add with a JSON body, as @trpc/client's httpLink sends it.
wrk.method = "POST"
wrk.body = '{"a": 1, "b": 2}'
wrk.headers["Content-Type"] = "application/json"
