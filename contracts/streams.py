"""JetStream stream, durable-consumer and key-value bucket definitions, as data.

The runtime (``service_runtime.bus``) turns these into nats-py configs and applies them
create-or-update at start, so a change here takes effect on the next deploy.
"""

from dataclasses import dataclass, field

from contracts import subjects


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float
    # Nats-Msg-Id de-duplication holds this long only; Postgres stays the record of truth.
    duplicate_window_seconds: float = 120.0


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer shared by every replica of one service."""

    durable: str
    stream: str
    filter_subject: str
    ack_wait_seconds: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 10_000
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class BucketSpec:
    """A key-value bucket's name, the age at which its entries expire (None: never), and whether
    its reads are direct gets.

    ``direct_reads`` (the stream's ``allow_direct``, the default of NATS's own CLI and Go client): a
    read is one ``$JS.API.DIRECT.GET`` answered with the raw value, which costs the client ~10-20 %
    and the server ~75 % less than the JetStream API's ``MSG.GET`` (JSON, base64; ``python -m
    bench.nats_ops``: ~160 -> ~140 µs client, ~95 -> ~25 µs server per read). With replicas, any
    replica may answer, a follower a few milliseconds behind the leader: only for buckets whose
    reader can live with that (a value written seconds before a redelivery reads it), not for
    compare-and-set ones, whose stale revision would only make the next write conflict."""

    name: str
    ttl_seconds: float | None = None
    direct_reads: bool = False


WORKOUT_EVENTS = StreamSpec(
    name="WORKOUT_EVENTS",
    subjects=subjects.ALL,
    max_age_seconds=7 * 24 * 3600,
)

# Messages a consumer gave up on, copied here with their reason before being terminated.
# Subject: ``dead.<consumer durable>``; see ``service_runtime.dead_letters``.
DEAD_LETTERS = StreamSpec(
    name="WORKOUT_DEAD_LETTERS",
    subjects=("dead.>",),
    max_age_seconds=30 * 24 * 3600,
)

# Progress notices, one subject per request (``progress.<request_id>``); short-lived, since a
# reader that comes back later starts from a snapshot. See ``contracts.progress``.
WORKOUT_PROGRESS = StreamSpec(
    name="WORKOUT_PROGRESS",
    subjects=(f"{subjects.PROGRESS_PREFIX}.*",),
    max_age_seconds=24 * 3600,
)

STREAMS = (WORKOUT_EVENTS, DEAD_LETTERS, WORKOUT_PROGRESS)

PLANNER = ConsumerSpec("planner", WORKOUT_EVENTS.name, subjects.PLAN_REQUESTED, description="writes plans")
PROFILER = ConsumerSpec(
    "profiler", WORKOUT_EVENTS.name, subjects.EXERCISE_PROFILE_NEEDED, description="writes exercise profiles"
)
PERSISTER_PLANS = ConsumerSpec(
    "persister-plans", WORKOUT_EVENTS.name, subjects.PLAN_GENERATED, description="stores generated plans"
)
PERSISTER_PROFILES = ConsumerSpec(
    "persister-profiles", WORKOUT_EVENTS.name, subjects.EXERCISE_PROFILED, description="joins profiles to plans"
)
PERSISTER_FAILURES = ConsumerSpec(
    "persister-failures", WORKOUT_EVENTS.name, subjects.PLAN_FAILED, description="marks requests failed"
)
PERSISTER_CANCELLATIONS = ConsumerSpec(
    "persister-cancellations",
    WORKOUT_EVENTS.name,
    subjects.PLAN_CANCELLED,
    description="removes what was stored of cancelled requests' plans",
)
PLANNER_CANCELLATIONS = ConsumerSpec(
    "planner-cancellations",
    WORKOUT_EVENTS.name,
    subjects.PLAN_CANCELLED,
    description="stops spending on cancelled requests",
)
PERSISTER_LEDGER = ConsumerSpec(
    "persister-ledger", WORKOUT_EVENTS.name, subjects.LLM_CALL_RECORDED, description="records every paid LLM call"
)

PLANNER_WEEKS = ConsumerSpec(
    "planner-weeks", WORKOUT_EVENTS.name, subjects.PLAN_WEEK_REQUESTED, description="writes weeks again"
)
PERSISTER_WEEKS = ConsumerSpec(
    "persister-weeks", WORKOUT_EVENTS.name, subjects.PLAN_WEEK_GENERATED, description="swaps rewritten weeks in"
)

PERSISTER_REVIEWS = ConsumerSpec(
    "persister-reviews",
    WORKOUT_EVENTS.name,
    subjects.PLAN_AWAITING_REVIEW,
    description="marks requests waiting for the user's review of their skeleton",
)

# The exercise catalogue's profiles, one key per exercise (``contracts.exercise_keys``):
# written by the profiler, read by the planner to steer new plans toward exercises already described.
EXERCISE_PROFILES = BucketSpec("exercise-profiles", direct_reads=True)

# The provider's per-minute budget of each model, one key per model, shared by every planner and
# profiler replica (``service_runtime.llm.budget``). An entry left alone for an hour is forgotten
# (a budget refills within a minute anyway).
LLM_BUDGETS = BucketSpec("llm-budgets", ttl_seconds=3600)
