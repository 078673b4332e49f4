"""`make token`, `make url`, and what `make demo` shows: tokens per user, the recorded gateway, the
live status line and the follow-up commands."""

import fcntl
import io
import os
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from devstack.__main__ import main
from devstack.demo import describe_progress, follow_up_commands
from devstack.live_view import LiveView
from devstack.state import (
    DEV_USER_ID,
    LOCK_FILE,
    NotRunningError,
    forget_gateway_url,
    record_gateway_url,
    running_gateway_url,
)

SECRET = "a-test-secret-long-enough-for-hs256-keys"


def _token_subject(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", *args]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated")
    return str(claims["sub"])


def test_every_token_is_a_fresh_user_and_the_dev_user_token_is_always_the_same(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)

    fresh = {_token_subject(capsys) for _ in range(3)}
    fixed = {_token_subject(capsys, "--dev-user") for _ in range(2)}

    assert len(fresh) == 3
    assert str(DEV_USER_ID) not in fresh
    assert fixed == {str(DEV_USER_ID)}


def test_the_gateway_url_is_answered_only_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    record_gateway_url(tmp_path, "http://127.0.0.1:41234")
    with pytest.raises(NotRunningError, match="no `make run` is serving"):
        running_gateway_url(tmp_path)  # a leftover of a killed run: nobody holds the lock

    with (tmp_path / LOCK_FILE).open("a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert running_gateway_url(tmp_path) == "http://127.0.0.1:41234"
        forget_gateway_url(tmp_path)
        with pytest.raises(NotRunningError):
            running_gateway_url(tmp_path)


def test_without_a_terminal_the_live_view_writes_a_line_per_phase_with_the_counts_it_reached() -> None:
    out = io.StringIO()
    view = LiveView(out)
    notices: list[dict[str, Any]] = [
        {"status": "processing", "stage": "queued"},
        {"status": "processing", "stage": "generating"},
        *({"status": "processing", "stage": "generating", "weeks_done": n} for n in range(1, 9)),
        {"status": "processing", "stage": "generated", "exercises_total": 21},
        *(
            {"status": "processing", "stage": "profiling", "exercises_total": 21, "exercises_profiled": n}
            for n in range(21)
        ),
        {"status": "completed", "stage": "completed", "plan_id": str(uuid.uuid4())},
    ]

    for notice in notices:
        view.show("r1", describe_progress(notice), phase=(notice["status"], notice["stage"]))
    view.close()

    assert out.getvalue().splitlines() == [
        "processing | queued",
        "processing | generating",
        "processing | generating | weeks 8/8",
        "processing | generated | profiles 0/21",
        "processing | profiling | profiles 0/21",
        "processing | profiling | profiles 20/21",
        "completed | completed",
    ]


def test_the_weeks_shown_so_far_fill_in_a_bar_in_any_order() -> None:
    notice = {"status": "processing", "stage": "generating", "weeks_done": 3}

    assert (
        describe_progress(notice, {1, 3, 4})
        == "processing | generating | weeks \u25a0\u25a1\u25a0\u25a0\u25a1\u25a1\u25a1\u25a1 3/8"
    )
    assert describe_progress(notice) == "processing | generating | weeks 3/8"


def _screen(output: str) -> tuple[list[str], int]:
    """What a terminal shows for ``output`` (the few controls LiveView writes), and the cursor's row."""
    rows, row, col = [""], 0, 0
    controls = {"\x1b[2K": "clear", "\x1b[1A": "up", "\r": "return", "\n": "newline"}
    i = 0
    while i < len(output):
        control = next((c for c in controls if output.startswith(c, i)), None)
        if control is None:
            rows[row] = rows[row][:col] + output[i] + rows[row][col + 1 :]
            col += 1
            i += 1
            continue
        i += len(control)
        action = controls[control]
        if action == "clear":
            rows[row] = ""
        elif action == "up":
            row = max(0, row - 1)
        elif action == "return":
            col = 0
        else:
            row, col = row + 1, 0
            if row == len(rows):
                rows.append("")
    return rows, row


def test_on_a_terminal_the_live_view_redraws_one_line_per_request_in_place() -> None:
    out = io.StringIO()
    view = LiveView(out, redraw=True)

    for n in range(1, 9):
        view.show("r1", f"r1 weeks {n}/8", phase=1)
        if n == 2:
            view.show("r2", "r2 queued", phase=1)
    view.show("r2", "r2 profiles 3/12", phase=2)
    view.close()

    rows, cursor = _screen(out.getvalue())
    assert rows == ["r1 weeks 8/8", "r2 profiles 3/12", ""]
    assert cursor == 2  # below the status lines: what is printed next does not overwrite them


def test_the_demo_ends_with_commands_that_carry_its_ids_and_token() -> None:
    request_id, plan_id = str(uuid.uuid4()), str(uuid.uuid4())

    lines = follow_up_commands("http://127.0.0.1:41234", "a.b.c", request_id, plan_id)

    assert lines[0] == "TOKEN=a.b.c"
    assert f"curl -sS http://127.0.0.1:41234/v1/plans/{plan_id} " in lines[2]
    assert all(request_id in line for line in lines[1:] if "/v1/requests/" in line)
    assert not any("<" in line for line in lines)


def test_url_and_demo_refuse_to_guess_a_gateway_when_no_run_is_serving(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("devstack.__main__.state_dir", lambda: tmp_path)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)

    assert main(["url"]) == 2
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.count("start it first") == 2
    assert not os.listdir(tmp_path)
