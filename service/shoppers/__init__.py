"""Shopper privacy: erasure on request (with hooks for derived data) and retention."""
