"""tRPC-compatible gateway for Stripe payments."""
