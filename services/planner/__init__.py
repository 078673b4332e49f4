"""The planner: turns ``plan.requested`` into a validated 8-week plan with one LLM call."""
