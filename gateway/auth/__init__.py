"""Who is calling and what they may do: bearer tokens, per-procedure access rules, abuse limits."""
