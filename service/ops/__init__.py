"""Operations: liveness/readiness probes and Prometheus metrics."""
