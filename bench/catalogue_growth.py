"""How many profile LLM calls a new plan costs once the catalogue has grown: 100 varied plans.

Writes the plans with the LLM simulator's own plan writer (what the planner would receive),
names their exercises with the planner's catalogue keys, and counts the keys each plan adds:
the profiler makes exactly one LLM call per new key (its claims make concurrent misses one
call; tests/e2e checks that), so that count is the profile calls of the plan. Also counts what
the same plans would have cost with names as the model wrote them (no alias folding).

    python -m bench.catalogue_growth [--plans 100] [--seed 7]
"""

import argparse
import itertools
import json
import random
import sys

from contracts.exercise_keys import exercise_key, exercise_refs
from llm_simulator.intent import read_intent
from llm_simulator.plans import write_plan

GOALS = ("build muscle", "get stronger", "lose fat", "improve general fitness")
DAYS = ("2 days a week", "3x per week", "4 days a week", "5x per week")
KIT = ("full gym", "home gym with dumbbells and a bench", "dumbbells only", "bodyweight only, no equipment")
NOTES = ("", "beginner", "advanced lifter", "bad knee", "lower back pain", "shoulder injury")


def profiles(count: int, rng: random.Random) -> list[str]:
    every = [", ".join(filter(None, combo)) for combo in itertools.product(GOALS, DAYS, KIT, NOTES)]
    rng.shuffle(every)
    return [f"I want to {text}" for text in every[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalogue_growth", description=__doc__)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    keys: set[str] = set()
    names: set[str] = set()
    new_keys: list[int] = []
    new_names: list[int] = []
    for profile in profiles(args.plans, rng):
        plan = write_plan(read_intent(profile, ""), random.Random(rng.getrandbits(64)))
        refs = exercise_refs(plan)
        plan_keys = {exercise_key(ref.name) for ref in refs}
        plan_names = {ref.name for ref in refs}
        new_keys.append(len(plan_keys - keys))
        new_names.append(len(plan_names - names))
        keys |= plan_keys
        names |= plan_names
    half = len(new_keys) // 2
    report = {
        "plans": len(new_keys),
        "profile_calls_per_plan": round(sum(new_keys) / len(new_keys), 2),
        "profile_calls_per_plan_second_half": round(sum(new_keys[half:]) / max(1, len(new_keys) - half), 2),
        "first_plan_calls": new_keys[0],
        "catalogue_keys": len(keys),
        "distinct_names_written": len(names),
        "calls_per_plan_without_alias_folding": round(sum(new_names) / len(new_names), 2),
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
