"""The roster names every service once, and every durable consumer to exactly one of them."""

from typing import get_args

from contracts import roster, streams
from contracts.events import FailureStage
from contracts.streams import ConsumerSpec


def test_every_stage_a_plan_can_fail_in_is_a_service_of_the_roster() -> None:
    assert sorted(roster.NAMES) == sorted(get_args(FailureStage))
    assert len(set(roster.NAMES)) == len(roster.SERVICES)


def test_every_durable_consumer_belongs_to_exactly_one_worker() -> None:
    declared = sorted(v.durable for v in vars(streams).values() if isinstance(v, ConsumerSpec))
    run = sorted(spec.durable for service in roster.SERVICES for spec in service.consumers)
    assert run == declared


def test_workers_answer_on_the_health_port_and_the_gateway_on_its_own() -> None:
    assert [s.name for s in roster.WORKERS] == ["planner", "profiler", "persister"]
    assert {s.port_variable for s in roster.WORKERS} == {"HEALTH_PORT"}
    assert roster.GATEWAY.port_variable == "GATEWAY_PORT"
    assert roster.PROFILER.module == "services.profiler"
