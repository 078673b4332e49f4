"""Runtime glue every service shares: settings base, NATS/JetStream bus, leased consumers,
LLM client construction, health/metrics endpoints and logging. Exactly one copy, here."""
