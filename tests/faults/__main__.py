"""``python -m tests.faults``: run one fault scenario, print its report, exit 1 on any violation."""

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.faults.scenario import ScenarioOptions, format_report, run_scenario


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20, help="kill -9 + restart events across the four services")
    parser.add_argument("--nats-restart", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--postgres-restart", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--freeze", action=argparse.BooleanOptionalAction, default=True, help="SIGSTOP a planner")
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument(
        "--generation", choices=("parallel", "progressive", "single"), default="parallel", help="PLANNER_GENERATION"
    )
    parser.add_argument(
        "--llm-mode", choices=("chat_stream", "responses_background"), default="chat_stream", help="single mode's"
    )
    parser.add_argument("--concurrency", type=int, default=20, help="plan requests in flight at the gateway")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quota-requests", type=int, default=1)
    parser.add_argument("--refusal-requests", type=int, default=1)
    parser.add_argument("--invalid-requests", type=int, default=1)
    parser.add_argument("--review-requests", type=int, default=10, help="ask to see their skeleton first")
    parser.add_argument("--planner-replicas", type=int, default=2)
    parser.add_argument("--window", type=float, default=None, help="seconds of load and chaos (default: 6 x kills)")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds to wait for every request to end")
    parser.add_argument("--ack-wait", type=float, default=6.0)
    parser.add_argument("--max-deliver", type=int, default=5)
    parser.add_argument("--tokens-per-second", type=float, default=3000.0)
    parser.add_argument("--stall", type=float, default=15.0, help="REQUEST_STALL_SECONDS")
    parser.add_argument("--deadline", type=float, default=300.0, help="REQUEST_DEADLINE_SECONDS")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra service setting")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and data here")
    parser.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = ScenarioOptions(
        plans=args.plans,
        kills=args.kills,
        nats_restart=args.nats_restart,
        postgres_restart=args.postgres_restart,
        freeze=args.freeze,
        fault_rate=args.fault_rate,
        llm_mode=args.llm_mode,
        generation=args.generation,
        concurrency=args.concurrency,
        seed=args.seed,
        quota_requests=args.quota_requests,
        invalid_requests=args.invalid_requests,
        review_requests=args.review_requests,
        refusal_requests=args.refusal_requests,
        planner_replicas=args.planner_replicas,
        window_seconds=args.window,
        settle_seconds=args.settle,
        ack_wait_seconds=args.ack_wait,
        max_deliver=args.max_deliver,
        tokens_per_second=args.tokens_per_second,
        stall_seconds=args.stall,
        deadline_seconds=args.deadline,
        workdir=args.workdir,
        extra_env=dict(item.split("=", 1) for item in args.env),
    )
    result = run_scenario(options)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps({"violations": result.violations, "figures": result.figures}, indent=2))
    print(format_report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
