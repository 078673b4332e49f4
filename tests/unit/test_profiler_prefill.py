"""The catalogue pre-fill at the use-case layer (fakes for the batch, the cache and the bus), and
the OpenAI batch adapter over the in-process simulator."""

import json
import uuid
from typing import Any

import pytest

from contracts.events import ExerciseProfiled, LlmCallRecorded
from contracts.exercise_keys import exercise_key
from contracts.plan import ExerciseProfile
from service_runtime.llm.batch import BatchItem, batch_call_id
from service_runtime.llm.errors import InvalidReply
from service_runtime.llm.fake import ScriptedBatches
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.openai_batch import OpenAiBatches
from service_runtime.logs import bind_request_id
from services.profiler.llm import INSTRUCTIONS, profile_prompt
from services.profiler.prefill import Prefill, distinct_exercises
from tests.fakes import InMemoryProfileCache, RecordingPublisher, sample_profile
from tests.unit.llm_simulator_in_process import Clock, InProcess


def profiles_by_name(item: BatchItem, _: type[Any]) -> ExerciseProfile:
    return sample_profile(item.prompt.user.removeprefix("Exercise: "))


async def test_only_the_exercises_the_cache_lacks_are_bought_in_one_batch_then_cached_and_published() -> None:
    cache, publisher = InMemoryProfileCache(), RecordingPublisher()
    cache.profiles[exercise_key("Barbell Back Squat")] = sample_profile("Barbell Back Squat")
    batches = ScriptedBatches(profiles_by_name)
    names = ["Barbell Back Squat", "Goblet Squat", "", "# a comment", "goblet squats", "Zercher Carry"]

    report = await Prefill(batches, cache, publisher).run(names)

    assert batches.batches == [["exercise-0", "exercise-1"]]
    assert (report.asked, report.cached, report.profiled) == (
        3,
        ["Barbell Back Squat"],
        ["Goblet Squat", "Zercher Carry"],
    )
    assert cache.profiles[exercise_key("Zercher Carry")] == sample_profile("Zercher Carry")
    events = [e for e in publisher.of_type(ExerciseProfiled) if isinstance(e, ExerciseProfiled)]
    assert [(e.exercise.name, e.source, e.request_id) for e in events] == [
        ("Goblet Squat", "llm", report.request_id),
        ("Zercher Carry", "llm", report.request_id),
    ]
    assert all(e.usage is not None and e.usage.completion_tokens > 0 for e in events)


async def test_a_second_run_over_the_same_names_buys_nothing() -> None:
    cache, publisher = InMemoryProfileCache(), RecordingPublisher()
    batches = ScriptedBatches(profiles_by_name)
    prefill = Prefill(batches, cache, publisher)
    await prefill.run(["Goblet Squat", "Zercher Carry"])

    again = await prefill.run(["Goblet Squat", "Zercher Carry"])

    assert len(batches.batches) == 1
    assert (again.cached, again.profiled, again.request_id) == (["Goblet Squat", "Zercher Carry"], [], None)
    assert len(publisher.events) == 2


async def test_an_unusable_reply_is_reported_and_skipped_and_a_profile_written_meanwhile_is_kept() -> None:
    class WrittenMeanwhile(InMemoryProfileCache):
        async def create(self, key: str, profile: ExerciseProfile) -> bool:
            if key == exercise_key("Zercher Carry"):
                self.profiles[key] = sample_profile("Zercher Carry (written elsewhere)")
            return await super().create(key, profile)

    def answer(item: BatchItem, reply_type: type[Any]) -> ExerciseProfile | InvalidReply:
        if "Landmine" in item.prompt.user:
            return InvalidReply("the reply does not match the schema")
        return profiles_by_name(item, reply_type)

    cache, publisher = WrittenMeanwhile(), RecordingPublisher()
    report = await Prefill(ScriptedBatches(answer), cache, publisher).run(
        ["Goblet Squat", "Zercher Carry", "Landmine Press"]
    )

    assert report.profiled == ["Goblet Squat"]
    assert report.kept == ["Zercher Carry"]
    assert report.unusable == {"Landmine Press": "the reply does not match the schema"}
    assert exercise_key("Landmine Press") not in cache.profiles
    assert cache.profiles[exercise_key("Zercher Carry")].name == "Zercher Carry (written elsewhere)"
    assert [e.exercise.name for e in publisher.of_type(ExerciseProfiled) if isinstance(e, ExerciseProfiled)] == [
        "Goblet Squat"
    ]


async def test_every_line_is_on_the_ledger_at_the_batch_tier_under_the_runs_request_id() -> None:
    ledger = RecordingPublisher()
    batches = ScriptedBatches(profiles_by_name, model="gpt-4o-mini", meter=LlmMeter("profiler", ledger=ledger))

    report = await Prefill(batches, InMemoryProfileCache(), RecordingPublisher()).run(["Goblet Squat", "Zercher Carry"])

    records = [e for e in ledger.of_type(LlmCallRecorded) if isinstance(e, LlmCallRecorded)]
    assert [(r.request_id, r.service_tier, r.stage) for r in records] == [(report.request_id, "batch", "profiler")] * 2
    assert [r.call_id for r in records] == [batch_call_id("batch_fake0", f"exercise-{i}") for i in range(2)]
    standard = LlmMeter("profiler").cost_usd("gpt-4o-mini", records[0].prompt_tokens, records[0].completion_tokens)
    assert records[0].cost_usd == pytest.approx(standard / 2)


def test_names_are_told_apart_by_catalogue_key_and_the_first_spelling_wins() -> None:
    refs = distinct_exercises(["BB back squats", "Barbell Back Squat", "  ", "#skip", "Goblet Squat"])
    assert [ref.name for ref in refs] == ["BB back squats", "Goblet Squat"]


async def test_the_openai_adapter_splits_past_the_per_batch_limit_and_meters_each_line_once() -> None:
    ledger = RecordingPublisher()
    items = [
        BatchItem(f"e{i}", profile_prompt(name))
        for i, name in enumerate(["Goblet Squat", "Zercher Carry", "Bad [[sim:fault=truncate]]"])
    ]
    async with InProcess(Clock(), batch_seconds=0.1) as sim:
        adapter = OpenAiBatches(
            sim.sdk, model="gpt-4o-mini", poll_seconds=0.02, meter=LlmMeter("profiler", ledger=ledger), max_requests=2
        )
        bind_request_id(uuid.uuid4())  # as the pre-fill does: the ledger's records name a request
        answers = await adapter.run(items, ExerciseProfile)
        stats = await sim.stats()
        sent = (await sim.wire.get(f"/v1/files/{(await sim.sdk.batches.list()).data[-1].input_file_id}/content")).text

    assert stats["batches_created_total"] == 2
    assert [a.reply.name if a.reply else None for a in answers] == ["Goblet Squat", "Zercher Carry", None]
    assert "truncated" in answers[2].problem and answers[2].usage is not None
    records = [e for e in ledger.of_type(LlmCallRecorded) if isinstance(e, LlmCallRecorded)]
    assert sorted(r.outcome for r in records) == ["invalid_reply", "ok", "ok"]
    assert {r.call_id for r in records} == {batch_call_id(a.batch_id, a.custom_id) for a in answers}
    assert {r.service_tier for r in records} == {"batch"}
    line = json.loads(sent.splitlines()[0])
    assert line["body"]["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    assert line["body"]["max_completion_tokens"] == ExerciseProfile.max_output_tokens
    assert line["body"]["response_format"]["json_schema"]["strict"] is True
