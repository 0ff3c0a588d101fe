"""Health checks, Prometheus metrics and structured logs: what an operator watches."""
