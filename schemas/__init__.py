"""msgspec structs: the inputs and outputs of every procedure (JSON field names are camelCase)."""
