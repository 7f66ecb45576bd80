"""Observability: traces (`tracing`), Prometheus metrics (`metrics`), structured logs
(`logging`), the log port observed (`records`), and the set-up call (`setup`)."""
