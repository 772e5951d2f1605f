"""Canton: the port the processor sees, its adapter, and the Ledger API v2 / Scan HTTP clients."""
