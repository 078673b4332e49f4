"""Runtime glue every service shares: settings base, NATS/JetStream bus, leased consumers,
LLM client construction, health/metrics endpoints, logging and tracing. Exactly one copy, here."""
