-- Webhook ingestion (bench/webhooks.py): POSTs pre-signed Stripe events read from a file, never building one here.
--
--   wrk -t1 -s bench/wrk/webhooks.lua URL -- REQUESTS_FILE MODE
--
-- REQUESTS_FILE holds, for each request, its length in bytes on a line of its own, then the raw HTTP/1.1 request
-- (headers, Stripe-Signature included, and body). MODE `once` sends each request at most once, in file order: when
-- they are all sent, every connection goes quiet (`delay` of an hour) rather than send one twice, and the summary
-- says `exhausted`. MODE `cycle` goes round the file for as long as wrk runs (the duplicate-delivery scenario).
--
-- Every response is read: its status, and the gateway's `{"received":true,"eventId":…,"outcome":…}`. At the end
-- one line `webhooks.lua: {…}` (JSON) on stdout gives the counts, and the ids answered `applied` are written, one a
-- line, to the file named by the environment variable WEBHOOK_BENCH_ANSWERED (if set).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local pending, total, mode

-- Globals, so that `done` can read them from each thread (thread:get).
sent, exhausted, applied, duplicate, other, non_200, answered = 0, 0, 0, 0, 0, 0, {}

function init(args)
   local file = assert(io.open(args[1], "rb"))
   pending = {}
   while true do
      local line = file:read("*l")
      if line == nil then break end
      local length = assert(tonumber(line), "webhooks.lua: a length line is not a number")
      local raw = file:read(length)
      assert(raw ~= nil and #raw == length, "webhooks.lua: the requests file is truncated")
      pending[#pending + 1] = raw
   end
   file:close()
   total = #pending
   assert(total > 0, "webhooks.lua: no requests in " .. args[1])
   mode = args[2]
   assert(mode == "once" or mode == "cycle", "webhooks.lua: MODE is once or cycle")
end

function delay()
   if mode == "once" and sent >= total then
      exhausted = 1
      return 3600000 -- milliseconds: this connection sends nothing more before wrk stops
   end
   return 0
end

function request()
   sent = sent + 1
   return pending[(sent - 1) % total + 1]
end

function response(status, headers, body)
   if status ~= 200 then
      non_200 = non_200 + 1
      return
   end
   local outcome = string.match(body, '"outcome":"(%a+)"')
   if outcome == "applied" then
      applied = applied + 1
      answered[applied] = string.match(body, '"eventId":"([^"]+)"')
   elseif outcome == "duplicate" then
      duplicate = duplicate + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local keys = { "sent", "exhausted", "applied", "duplicate", "other", "non_200" }
   local totals = {}
   for _, key in ipairs(keys) do totals[key] = 0 end
   local path = os.getenv("WEBHOOK_BENCH_ANSWERED")
   local out = path and assert(io.open(path, "wb"))
   for _, thread in ipairs(threads) do
      for _, key in ipairs(keys) do totals[key] = totals[key] + thread:get(key) end
      if out then
         for _, id in ipairs(thread:get("answered")) do out:write(id, "\n") end
      end
   end
   if out then out:close() end
   local fields = {}
   for _, key in ipairs(keys) do fields[#fields + 1] = string.format('"%s":%d', key, totals[key]) end
   io.write("webhooks.lua: {", table.concat(fields, ","), "}\n")
end
