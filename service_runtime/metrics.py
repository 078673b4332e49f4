"""Every Prometheus metric the services export, in one catalogue (the dashboard and alerts read it).

Conventions: the ``workout_`` prefix, base units in the name (``_seconds``, ``_usd``), ``_total``
on counters, and only bounded label values: a route template, a consumer name, a stage, a model,
an outcome or reason from a fixed set. Never a request id, a user id or an exception text.
Histograms that time LLM work reach an hour, since a plan takes minutes.

Each process exports the metrics of the code it runs (the default registry); the Prometheus job
(one per service) tells them apart.
"""

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_ACK_PENDING",
    "CONSUMER_HALTED",
    "CONSUMER_PENDING",
    "DB_POOL_CONNECTIONS",
    "DEAD_LETTERED",
    "DEAD_LETTER_STREAM_MESSAGES",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "LLM_ADMISSION_WAIT_SECONDS",
    "LLM_ADMITTED_TOKENS",
    "LLM_BUDGET_REQUESTS",
    "LLM_BUDGET_TOKENS",
    "LLM_CALLS",
    "LLM_CALLS_WAITING",
    "LLM_CALL_SECONDS",
    "LLM_COST_USD",
    "LLM_FALLBACKS",
    "LLM_TOKENS",
    "LONG_BUCKETS",
    "MESSAGES_HANDLED",
    "MESSAGES_IN_FLIGHT",
    "MESSAGES_REDELIVERED",
    "MESSAGE_HANDLING_SECONDS",
    "OUTBOX_BACKLOG",
    "OUTBOX_OLDEST_SECONDS",
    "PLANS_ACCEPTED",
    "PLANS_CANCELLED",
    "PLANS_COMPLETED",
    "PLANS_FAILED",
    "PLANS_REFUSED",
    "PLAN_SECONDS",
    "PROFILE_CACHE",
    "STAGE_SECONDS",
    "consumer_at_zero",
    "llm_at_zero",
    "start_at_zero",
    "watch_pool",
]

# Seconds, from a fast handler to a plan that took most of its hour-long deadline.
LONG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1800, 3600)
# Seconds, for HTTP answers that should take milliseconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- gateway: HTTP and intake ------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "workout_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "workout_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a stream), by route template and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
PLANS_ACCEPTED = Counter("workout_plans_accepted_total", "Plan requests accepted (202), retries excluded.")
PLANS_REFUSED = Counter(
    "workout_plans_refused_total", "Plan requests refused by a limit, by reason.", ["reason"]
)  # reason: active_cap | daily_quota | user_budget | global_budget | overloaded (the gateway shed it)
PLANS_CANCELLED = Counter("workout_plans_cancelled_total", "Requests the user cancelled while processing.")
OUTBOX_BACKLOG = Gauge("workout_outbox_backlog", "Events stored but not yet confirmed published (outbox rows).")
OUTBOX_OLDEST_SECONDS = Gauge("workout_outbox_oldest_seconds", "Age of the oldest unpublished outbox event.")

# --- every consumer ------------------------------------------------------------------------------

MESSAGES_HANDLED = Counter(
    "workout_messages_handled_total",
    "Messages settled, by consumer and outcome (acked, retried, gave_up, error).",
    ["consumer", "outcome"],
)
MESSAGES_REDELIVERED = Counter(
    "workout_messages_redelivered_total", "Deliveries that were not a message's first, by consumer.", ["consumer"]
)
MESSAGE_HANDLING_SECONDS = Histogram(
    "workout_message_handling_seconds",
    "Time from receipt to ack, nak or term, by consumer.",
    ["consumer"],
    buckets=LONG_BUCKETS,
)
MESSAGES_IN_FLIGHT = Gauge("workout_messages_in_flight", "Messages being handled now, by consumer.", ["consumer"])
CONSUMER_PENDING = Gauge(
    "workout_consumer_pending_messages", "Messages not yet delivered to the durable consumer.", ["consumer"]
)
CONSUMER_ACK_PENDING = Gauge(
    "workout_consumer_ack_pending_messages", "Messages delivered to the durable consumer, not yet acked.", ["consumer"]
)
CONSUMER_HALTED = Gauge(
    "workout_consumer_halted",
    "1 while the consumer has stopped taking work because the service is misconfigured (see its log).",
    ["consumer", "reason"],
)
DEAD_LETTERED = Counter(
    "workout_dead_letters_total",
    "Messages given up on and dead-lettered, by consumer and reason.",
    ["consumer", "reason"],
)
DEAD_LETTER_STREAM_MESSAGES = Gauge(
    "workout_dead_letter_stream_messages", "Messages in the dead-letter stream (what operators may replay)."
)

# --- LLM calls (planner, profiler) ---------------------------------------------------------------

LLM_CALLS = Counter(
    "workout_llm_calls_total",
    "LLM calls, by stage, model and outcome (ok, invalid_reply, rate_limited, server_error, quota, timeout,"
    " connection, other).",
    ["stage", "model", "outcome"],
)
LLM_CALL_SECONDS = Histogram(
    "workout_llm_call_duration_seconds",
    "Duration of one LLM call, by stage and model.",
    ["stage", "model"],
    buckets=LONG_BUCKETS,
)
LLM_TOKENS = Counter(
    "workout_llm_tokens_total",
    "Tokens the provider billed, by stage, model and kind (prompt, completion; cached: the prompt tokens it"
    " served from its prompt cache, a part of prompt).",
    ["stage", "model", "kind"],
)
LLM_COST_USD = Counter(
    "workout_llm_cost_usd_total",
    "What those tokens cost at the configured prices, by stage, model and the service tier that served them"
    " (default, flex, priority; batch: the Batch API).",
    ["stage", "model", "tier"],
)
LLM_FALLBACKS = Counter(
    "workout_llm_fallbacks_total",
    "Calls made again on the fallback model because the primary's provider was down or refused them, by stage,"
    " the two models and the primary's reason (llm_server_error, llm_unreachable, llm_timeout, llm_stuck_queued,"
    " llm_rate_limited, llm_model_not_found).",
    ["stage", "from_model", "to_model", "reason"],
)

LLM_BUDGET_TOKENS = Gauge(
    "workout_llm_budget_tokens_per_minute",
    "The provider's tokens-per-minute budget in force for a model, shared by every replica (configured, or"
    " lower when the provider's x-ratelimit headers say so).",
    ["model"],
)
LLM_BUDGET_REQUESTS = Gauge(
    "workout_llm_budget_requests_per_minute",
    "The provider's requests-per-minute budget in force for a model, shared by every replica.",
    ["model"],
)
LLM_ADMITTED_TOKENS = Counter(
    "workout_llm_admitted_tokens_total",
    "Tokens taken from the shared budget by admitted calls (their estimate: prompt and output cap), by stage,"
    " model and lane (standard, priority).",
    ["stage", "model", "lane"],
)
LLM_CALLS_WAITING = Gauge(
    "workout_llm_calls_waiting",
    "Calls waiting for the shared budget to admit them, by stage, model and lane.",
    ["stage", "model", "lane"],
)
LLM_ADMISSION_WAIT_SECONDS = Histogram(
    "workout_llm_admission_wait_seconds",
    "How long a call waited for the shared budget before it was admitted, by stage, model and lane.",
    ["stage", "model", "lane"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)

# --- plans (persister, planner) ------------------------------------------------------------------

EVENTS_PUBLISHED = Counter(
    "workout_events_published_total",
    "Events published to JetStream (acknowledged by the stream, or failed), by subject.",
    ["subject", "outcome"],
)
EVENT_PUBLISH_SECONDS = Histogram(
    "workout_event_publish_seconds",
    "Time from publishing an event to the stream's acknowledgement, by subject.",
    ["subject"],
    buckets=HTTP_BUCKETS,
)

GROUPED_WRITE_ITEMS = Histogram(
    "workout_grouped_write_items",
    "Items written per grouped write (service_runtime/groups.py): plans per plan transaction, ledger rows,"
    " outbox confirmations; by what is written.",
    ["write"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

PLAN_QUALITY = Histogram(
    "workout_plan_quality",
    "Quality scores of each generated plan in [0, 1] (services/planner/scores.py), by dimension"
    " ('overall' among them), prompt version and model.",
    ["dimension", "prompt_version", "model"],
    buckets=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0),
)
PLAN_COST_USD = Histogram(
    "workout_plan_cost_usd",
    "LLM cost of each generated plan (its calls on the ledger, earlier deliveries' kept parts included),"
    " by prompt version and model.",
    ["prompt_version", "model"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
)
PLANS_COMPLETED = Counter("workout_plans_completed_total", "Requests that ended completed.")
PLANS_FAILED = Counter(
    "workout_plans_failed_total",
    "Requests that ended failed, by the stage that gave up and its reason.",
    ["stage", "reason"],
)
PLAN_SECONDS = Histogram(
    "workout_plan_duration_seconds", "From acceptance to completed, per request.", buckets=LONG_BUCKETS
)
STAGE_SECONDS = Histogram(
    "workout_stage_duration_seconds",
    "Time spent in each stage: queued (accepted to planner start), generating (the plan's LLM work),"
    " profiling (plan stored to completed).",
    ["stage"],
    buckets=LONG_BUCKETS,
)
PROFILE_CACHE = Counter("workout_profile_cache_total", "Exercise profile lookups, by result (hit, miss).", ["result"])

# --- Postgres pools (gateway, persister) ---------------------------------------------------------

DB_POOL_CONNECTIONS = Gauge(
    "workout_db_pool_connections", "asyncpg pool connections, by state (in_use, idle, max).", ["state"]
)


def start_at_zero() -> None:
    """Create the label sets every process of a kind will use, at 0, so a first event shows as an
    increase (``rate``/``increase`` cannot see a series that appears already at 1)."""
    for reason in ("active_cap", "daily_quota", "user_budget", "global_budget"):
        PLANS_REFUSED.labels(reason)
    for result in ("hit", "miss"):
        PROFILE_CACHE.labels(result)
    PLANS_FAILED.labels("persister", "timeout")


def consumer_at_zero(consumer: str) -> None:
    """The same for one consumer's series."""
    for outcome in ("acked", "retried", "gave_up", "halted", "error"):
        MESSAGES_HANDLED.labels(consumer, outcome)
    MESSAGES_REDELIVERED.labels(consumer)
    MESSAGES_IN_FLIGHT.labels(consumer)
    CONSUMER_HALTED.labels(consumer, "none")


def llm_at_zero(stage: str, model: str, outcomes: Iterable[str]) -> None:
    """The same for one stage's LLM calls with its configured model (``outcomes``: the labels
    ``service_runtime.llm.errors`` gives)."""
    for outcome in outcomes:
        LLM_CALLS.labels(stage, model, outcome)
    for kind in ("prompt", "cached", "completion"):
        LLM_TOKENS.labels(stage, model, kind)
    for tier in ("default", "flex", "priority", "batch"):
        LLM_COST_USD.labels(stage, model, tier)


class _Pool(Protocol):
    def get_size(self) -> int: ...

    def get_idle_size(self) -> int: ...

    def get_max_size(self) -> int: ...


def watch_pool(pool: _Pool) -> None:
    """Export ``pool``'s connections, read at each scrape."""
    DB_POOL_CONNECTIONS.labels("max").set_function(pool.get_max_size)
    DB_POOL_CONNECTIONS.labels("idle").set_function(pool.get_idle_size)
    DB_POOL_CONNECTIONS.labels("in_use").set_function(lambda: pool.get_size() - pool.get_idle_size())
