"""API keys, uploaded catalog products and rate-limit counters (the service-api tables)."""
