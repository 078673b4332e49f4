"""Dead letters: messages a consumer gave up on, kept with their reason for an operator.

A consumer that gives up on a message (a permanent fault, or its attempts exhausted) copies it
to the ``WORKOUT_DEAD_LETTERS`` stream, subject ``dead.<consumer>``, with headers saying why,
before terminating it; the request itself ends ``failed`` through ``plan.failed``.

Operators: ``python -m service_runtime.dead_letters list`` shows them, and
``python -m service_runtime.dead_letters replay SEQ [SEQ ...]`` publishes each back to its
original subject (a fresh ``Nats-Msg-Id``, so JetStream does not drop it as a duplicate).
Replaying a message whose request already ended ``failed`` re-runs that stage's work but cannot
reopen the request: terminal statuses are final.
"""

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import datetime

import nats
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from contracts.streams import DEAD_LETTERS

REASON = "Dead-Reason"
DETAIL = "Dead-Detail"
CONSUMER = "Dead-Consumer"
DELIVERIES = "Dead-Deliveries"
ORIGINAL_SUBJECT = "Dead-Original-Subject"
ORIGINAL_SEQUENCE = "Dead-Original-Sequence"


async def dead_letter(js: JetStreamContext, msg: Msg, *, consumer: str, reason: str, detail: str) -> None:
    """Copy ``msg`` to the dead-letter stream with why it died; idempotent per original message."""
    meta = msg.metadata
    headers = {
        REASON: reason,
        DETAIL: detail[:1000],
        CONSUMER: consumer,
        DELIVERIES: str(meta.num_delivered),
        ORIGINAL_SUBJECT: msg.subject,
        ORIGINAL_SEQUENCE: str(meta.sequence.stream),
        "Nats-Msg-Id": f"dead:{meta.stream}:{consumer}:{meta.sequence.stream}",
    }
    await js.publish(f"dead.{consumer}", msg.data, headers=headers, stream=DEAD_LETTERS.name)


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    time: datetime
    consumer: str
    original_subject: str
    reason: str
    detail: str
    deliveries: str
    data: bytes


async def list_dead_letters(js: JetStreamContext, limit: int = 100) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters still kept."""
    info = await js.stream_info(DEAD_LETTERS.name)
    letters: list[DeadLetter] = []
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(letters) < limit:
        try:
            raw = await js.get_msg(DEAD_LETTERS.name, seq)
        except nats.js.errors.NotFoundError:
            seq += 1
            continue
        headers = raw.headers or {}
        letters.append(
            DeadLetter(
                sequence=raw.seq or seq,
                time=datetime.fromisoformat(str(raw.time)) if raw.time else datetime.min,
                consumer=headers.get(CONSUMER, "?"),
                original_subject=headers.get(ORIGINAL_SUBJECT, "?"),
                reason=headers.get(REASON, "?"),
                detail=headers.get(DETAIL, ""),
                deliveries=headers.get(DELIVERIES, "?"),
                data=raw.data or b"",
            )
        )
        seq += 1
    return letters


async def replay(js: JetStreamContext, sequence: int) -> str:
    """Publish dead letter ``sequence`` back to its original subject, then delete it; return that subject."""
    raw = await js.get_msg(DEAD_LETTERS.name, sequence)
    subject: str | None = (raw.headers or {}).get(ORIGINAL_SUBJECT)
    if not subject:
        raise LookupError(f"dead letter {sequence} does not name its original subject")
    await js.publish(subject, raw.data or b"", headers={"Nats-Msg-Id": f"replay:{DEAD_LETTERS.name}:{sequence}"})
    await js.delete_msg(DEAD_LETTERS.name, sequence)
    return subject


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m service_runtime.dead_letters", description=__doc__)
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show the dead letters")
    listing.add_argument("--limit", type=int, default=100)
    replaying = commands.add_parser("replay", help="publish dead letters back to their original subjects")
    replaying.add_argument("sequences", type=int, nargs="+")
    args = parser.parse_args(argv)

    nc = await nats.connect(args.nats_url)
    try:
        js = nc.jetstream()
        if args.command == "list":
            letters = await list_dead_letters(js, args.limit)
            for letter in letters:
                print(
                    f"{letter.sequence:>6}  {letter.time:%Y-%m-%d %H:%M:%S}  {letter.consumer:<20} "
                    f"{letter.original_subject:<26} x{letter.deliveries:<2} {letter.reason}: {letter.detail[:80]}"
                )
            print(f"{len(letters)} dead letter(s)")
        else:
            for sequence in args.sequences:
                subject = await replay(js, sequence)
                print(f"replayed {sequence} to {subject}")
    finally:
        await nc.drain()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
