-- The payment flow (bench/replicas.py): POST /trpc/stripe.createPaymentIntent, each request a new order.
--
--   wrk -t1 -s bench/wrk/replicas.lua URL -- TAG TOKEN
--
-- TAG is unique to the wrk run (the script draws a new one for each), TOKEN a bearer token the gateway accepts.
-- Order ids are `bench-TAG-THREAD-COUNTER`: distinct across wrk threads and runs, so every request makes a new
-- order (store write, PaymentIntent at Stripe, store write). Creates only: no getPaymentStatus in between.
--
-- Every response is read: a 200 must carry `"paymentIntentId":"pi_…"`. At the end one line `replicas.lua: {…}`
-- (JSON) on stdout gives the counts: `sent` (requests written), `created` (200 with a PaymentIntent), `non_200`
-- and `other` (200 without one).

local threads = {}
local next_thread = 0

function setup(thread)
   next_thread = next_thread + 1
   thread:set("thread_number", next_thread)
   table.insert(threads, thread)
end

local prefix, headers

-- Globals, so that `done` can read them from each thread (thread:get).
sent, created, non_200, other = 0, 0, 0, 0

function init(args)
   assert(args[1] and args[2], "replicas.lua: arguments are TAG TOKEN")
   prefix = string.format("bench-%s-%d-", args[1], thread_number)
   headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. args[2],
   }
end

function request()
   sent = sent + 1
   local body = string.format('{"orderId":"%s%d","amount":2500,"currency":"eur"}', prefix, sent)
   return wrk.format("POST", nil, headers, body)
end

function response(status, _, body)
   if status ~= 200 then
      non_200 = non_200 + 1
   elseif string.find(body, '"paymentIntentId":"pi_', 1, true) then
      created = created + 1
   else
      other = other + 1
   end
end

function done()
   local keys = { "sent", "created", "non_200", "other" }
   local totals = {}
   for _, key in ipairs(keys) do totals[key] = 0 end
   for _, thread in ipairs(threads) do
      for _, key in ipairs(keys) do totals[key] = totals[key] + thread:get(key) end
   end
   local fields = {}
   for _, key in ipairs(keys) do fields[#fields + 1] = string.format('"%s":%d', key, totals[key]) end
   io.write("replicas.lua: {", table.concat(fields, ","), "}\n")
end
