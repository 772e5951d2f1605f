"""A Canton network in one process: JSON Ledger API v2 at `/`, Scan at `/api/scan/`."""
