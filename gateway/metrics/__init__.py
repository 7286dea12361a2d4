"""Payment metrics and health: what `/metrics/payments`, `/detailed`, `/prometheus` and `/health` answer.

`recorder.Metrics` is fed by the HTTP observer, the tRPC resolver, the Stripe client and the webhook route and
service; `reports`, `prometheus` and `health` read it; `routes` serves them; `catalogue` names every Prometheus
series.
"""
