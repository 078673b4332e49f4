"""The fault suite's short form: a score of plans through the four services while everything breaks.

The long run is ``make faults`` (``python -m tests.faults``); this one keeps every kind of fault but
fewer plans and kills, so it fits in ``make test`` on two cores, once per LLM mode.
"""

import dataclasses

import pytest

from tests.faults.scenario import ScenarioOptions, format_report, run_scenario

pytestmark = pytest.mark.e2e

SHORT = ScenarioOptions(
    plans=16,
    kills=4,
    nats_restart=True,
    postgres_restart=True,
    fault_rate=0.3,
    concurrency=16,
    seed=11,
    quota_requests=1,
    invalid_requests=1,
    review_requests=3,
    window_seconds=40,
    settle_seconds=70,
    ack_wait_seconds=4,
    deadline_seconds=100,
    # Every call through the shared provider budget (roomy: it admits at once), kills and restarts included.
    extra_env={"LLM_RATE_LIMITS": '{"gpt-4o-mini": {"tokens_per_minute": 50000000, "requests_per_minute": 100000}}'},
)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("llm_mode", ["chat_stream", "responses_background"])
def test_every_request_ends_once_whatever_breaks(tmp_path_factory: pytest.TempPathFactory, llm_mode: str) -> None:
    # Both LLM modes: streamed chat (the portable default) and re-attaching background responses.
    options = dataclasses.replace(SHORT, llm_mode=llm_mode, workdir=tmp_path_factory.mktemp("faults"))
    result = run_scenario(options)
    report = format_report(result)
    print(report)
    assert result.ok, report + "\n" + result.figures.get("log_tail", "")
    chaos = result.figures["chaos"]
    assert chaos["kills"] >= 4, chaos
    assert set(chaos["kills_by_process"]) >= {"gateway", "persister", "profiler"}, chaos
    assert chaos["nats_restarts"] == 1, chaos
    assert chaos["postgres_restarts"] == 1, chaos
    assert result.figures["llm"]["plan_faults"].get("quota") == 1, result.figures["llm"]
