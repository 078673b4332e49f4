"""The event bus: one NATS connection per process (owned by a FastStream broker), JetStream
streams and durable consumers applied create-or-update, and typed event publishing.

Events are published straight through nats-py's JetStream client, each serialised once, in a
PRODUCER span and counted by subject (``workout_events_published_total``): FastStream's publish
path with its Prometheus and OpenTelemetry middlewares cost 360 µs of CPU per publish against
130 µs for the same publish through nats-py (measured on this box), and an accepted request or a
plan publishes on every step."""

import logging
import time
from typing import Any, Protocol
from uuid import UUID

from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from contracts.events import Event
from contracts.progress import PlanProgress
from contracts.streams import STREAMS, ConsumerSpec, StreamSpec
from contracts.subjects import PROGRESS_PREFIX
from service_runtime.logs import reason
from service_runtime.metrics import EVENT_PUBLISH_SECONDS, EVENTS_PUBLISHED
from service_runtime.tracing import publishing

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    """Port for publishing events; an event counts as published once JetStream acknowledged it."""

    async def publish(self, event: Event) -> None: ...


class ProgressAnnouncer(Protocol):
    """Port for progress notices: best effort, never raises (a lost notice costs a reader a snapshot)."""

    async def announce(self, progress: PlanProgress) -> None: ...


def progress_subject(request_id: UUID) -> str:
    """The subject carrying one request's progress notices."""
    return f"{PROGRESS_PREFIX}.{request_id}"


class EventBus:
    """A connected broker plus the JetStream operations the services need."""

    def __init__(self, nats_url: str, *, client_name: str, publish_timeout_seconds: float, replicas: int = 1) -> None:
        self._publish_timeout = publish_timeout_seconds
        self.replicas = replicas
        self.broker = NatsBroker(
            nats_url,
            name=client_name,
            # nats-py gives up after ~2 minutes by default; a broker restart must never
            # leave a service running but disconnected for good.
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            logger=logging.getLogger(f"faststream.{client_name}"),
        )
        # Labelled metric children by subject (a fixed set), looked up once.
        self._published: dict[str, tuple[Any, Any, Any]] = {}
        self._js: JetStreamContext | None = None

    async def start(self) -> None:
        await self.broker.start()
        await ensure_streams(self.jetstream, replicas=self.replicas)

    async def stop(self) -> None:
        await self.broker.stop()

    async def __aenter__(self) -> "EventBus":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def jetstream(self) -> JetStreamContext:
        if self._js is None:
            # One context for the connection's life: nats-py reconnects the same connection object.
            self._js = self.broker.connection.jetstream()
        return self._js

    @property
    def is_connected(self) -> bool:
        try:
            return self.broker.connection.is_connected
        except Exception:  # not connected yet, or already stopped
            return False

    async def publish(self, event: Event) -> None:
        """Publish and wait for the stream's ack; ``Nats-Msg-Id`` makes a re-publish a no-op."""
        subject = event.subject
        metrics = self._published.get(subject)
        if metrics is None:
            metrics = self._published[subject] = (
                EVENTS_PUBLISHED.labels(subject, "ok"),
                EVENTS_PUBLISHED.labels(subject, "error"),
                EVENT_PUBLISH_SECONDS.labels(subject),
            )
        published, failed, seconds = metrics
        message_id = event.dedup_id
        headers = {"Nats-Msg-Id": message_id, "content-type": "application/json"}
        started = time.monotonic()
        try:
            with publishing(subject, message_id, headers):
                await self.jetstream.publish(
                    subject,
                    event.wire,
                    timeout=self._publish_timeout,
                    stream=_stream_for(subject).name,
                    headers=headers,
                )
        except BaseException:
            failed.inc()
            raise
        published.inc()
        seconds.observe(time.monotonic() - started)

    async def announce(self, progress: PlanProgress) -> None:
        """Publish a progress notice; on failure log it and go on (the work itself already counted).

        Best effort, so without waiting for the stream's ack: the stream stores it all the same
        (its subject is the stream's), and a notice costs the publisher ~20 µs instead of ~130 and
        the server ~21 µs instead of ~33 (``python -m bench.nats_ops``; ~12 notices per plan).
        The connection sends in order, so a notice is in the server's hands before any later
        acknowledged publish of the same process (the plan's own event) is acked; a process that
        dies before that redoes the work and announces again (the weeks de-duplicated by
        ``Nats-Msg-Id``). A notice after a process's last acknowledged publish may die with it:
        best effort, as a notice is anyway (the live status re-reads the request row while none
        arrives, ``services/gateway/live.py``). During a reconnect nats-py holds it with
        everything else it sends.
        """
        try:
            # Straight through nats-py, past the broker's Prometheus middleware: it labels by
            # subject, and a subject per request would make that label unbounded.
            headers = {"content-type": "application/json"}
            if progress.week is not None:
                # A week announced again (a redelivery reassembling kept parts) is one notice, inside
                # the stream's duplicate window; the gateway shows each week version once either way.
                headers["Nats-Msg-Id"] = f"{progress.request_id}.week{progress.week.week}.v{progress.week_version}"
            await self.broker.connection.publish(
                progress_subject(progress.request_id), progress.model_dump_json().encode(), headers=headers
            )
        except Exception as exc:
            log.warning("progress notice for %s not published: %s", progress.request_id, reason(exc))


def _stream_for(subject: str) -> StreamSpec:
    for stream in STREAMS:
        if subject in stream.subjects:
            return stream
    raise LookupError(f"no stream carries subject {subject!r}")


async def ensure_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create each stream, or update it in place when its definition (or ``replicas``) changed."""
    for spec in STREAMS:
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            storage=StorageType.FILE,
            max_age=spec.max_age_seconds,
            duplicate_window=spec.duplicate_window_seconds,
            num_replicas=replicas,
        )
        try:
            await js.stream_info(spec.name)
        except Exception:
            await js.add_stream(config)
            log.info("created stream %s", spec.name)
        else:
            await js.update_stream(config)


async def open_bucket(
    js: JetStreamContext, bucket: str, *, ttl_seconds: float | None = None, replicas: int = 1, direct: bool = False
) -> KeyValue:
    """A key-value bucket (one value per key, file storage), created on first use; ``direct``: read
    with direct gets (``BucketSpec.direct_reads``).

    A bucket that exists with other replicas, another TTL or other reads gets its backing stream
    updated, so a changed setting takes effect as it does for the streams.
    """
    config = KeyValueConfig(
        bucket=bucket, history=1, ttl=ttl_seconds, replicas=replicas, storage=StorageType.FILE, direct=direct
    )
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # "stream name already in use with a different configuration"
        stream = (await js.stream_info(f"KV_{bucket}")).config
        stream.num_replicas, stream.max_age, stream.allow_direct = replicas, ttl_seconds, direct
        if ttl_seconds:  # as nats-py creates a bucket: the duplicate window may not exceed the TTL
            stream.duplicate_window = min(stream.duplicate_window or ttl_seconds, ttl_seconds)
        await js.update_stream(stream)
        log.info("updated bucket %s: %d replicas, ttl %s, direct reads %s", bucket, replicas, ttl_seconds, direct)
        return await js.key_value(bucket)  # after the update: it reads the way the stream now allows


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create-or-update the durable consumer: a changed ConsumerSpec takes effect at start."""
    await js.add_consumer(
        spec.stream,
        ConsumerConfig(
            durable_name=spec.durable,
            description=spec.description or None,
            filter_subject=spec.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_seconds,
            max_deliver=spec.max_deliver,
            max_ack_pending=spec.max_ack_pending,
        ),
    )
