"""A local build through a misbehaving completion API, interrupted twice and resumed: nothing lost, nothing
written that is not a critique, and no story paid for twice except the calls a hard crash cut off.

The OpenAI-compatible test server answers about 30% of calls with 429 (with Retry-After) or 500, adds random
latency, and stalls some calls past the client's timeout (it never answers those, so an abandoned call is
never a paid one; every normal answer comes far inside the timeout, so none reaches a client that gave up).
The server counts a paid call only once its answer is written to the client.

The build (`coach build` in a subprocess) is stopped with Ctrl-C (SIGINT) part-way, which must lose nothing:
the workers finish their batches and the records are saved before it exits. The second run is killed
outright (SIGKILL): critiques paid for in batches that had not finished are lost with the process (each
batch's records are saved before its messages are deleted), so the third run pays for exactly those again.
The test identifies them from what the server had paid at the kill and what was on disk after it, bounds
them by the batches in flight, and requires every other story to be paid for exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.support.signals import default_sigint
from tests.support.stories import critique, marker, paragraphs, samples, write_rows

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
KEY = "sk-fault-injection"
BUILD = "fault-injection"
STORIES = 64
TIMEOUT_S = 2.5  # latency tops out at 0.3 s: no normal answer may arrive after the client gave up
CONCURRENCY = 6


def write_stories(path: Path) -> list[str]:
    """64 distinct stories cut from the bundled samples, each opening with a marker the test can find."""
    found = samples()
    rows = []
    for number in range(STORIES):
        sample = found[number % len(found)]
        whole = paragraphs(sample)
        part, third = number // len(found), max(1, len(whole) // 3)
        chunk = whole[part * third:(part + 1) * third + 2]
        if sum(len(p) for p in chunk) < 600:
            chunk = whole
        rows.append({"id": f"fault-{number:03d}", "title": f"{sample.stem.replace('-', ' ')} ({part + 1})",
                     "text": f"{marker(number)} " + "\n\n".join(chunk)})
    return write_rows(path, rows)


def environment(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url, COACH_COMPLETION_TIMEOUT=str(TIMEOUT_S))
    return env


def start_build(source: Path, out: Path, base_url: str, concurrency: int = CONCURRENCY) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coach", "build", "--source", str(source), "--provider", "openai",
         "--model", "gpt-4o-mini", "--build-id", BUILD, "--out", str(out), "--concurrency", str(concurrency)],
        cwd=REPO, env=environment(base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint)  # the test presses Ctrl-C: the build must not inherit SIGINT ignored


def wait_for_paid(server: FakeOpenAIServer, build: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while server.total_successes < at_least:
        assert build.poll() is None, f"the build ended before it was interrupted: {build.communicate()}"
        assert time.monotonic() < deadline, "the build made no progress"
        time.sleep(0.05)


def records_on_disk(out: Path) -> dict[str, dict]:
    folder = out / ".state" / "builds" / BUILD / "feedback"
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def paid_per_story(server: FakeOpenAIServer, ids: list[str]) -> dict[str, int]:
    return {story_id: server.successes_containing(marker(n)) for n, story_id in enumerate(ids)}


def test_interrupted_and_crashed_build_accounts_for_every_story_and_pays_once(tmp_path):
    source = tmp_path / "stories.jsonl"
    ids = write_stories(source)
    out = tmp_path / "out"
    faults = {"failure_rate": 0.3, "rate_limit_share": 0.5, "retry_after": 0.2, "latency": (0.05, 0.3),
              "stall_rate": 0.05, "stall_seconds": TIMEOUT_S * 2, "seed": 6}
    with FakeOpenAIServer(api_key=KEY, reply=critique, **faults) as server:
        # 1. Ctrl-C part-way: in-flight batches finish and are saved; the command says how to continue.
        first = start_build(source, out, server.base_url)
        wait_for_paid(server, first, 12)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
        assert first.returncode == 130, stderr
        assert "interrupted" in stderr and "re-run" in stderr
        after_interrupt = records_on_disk(out)
        generated_then = {s for s, r in after_interrupt.items() if r["status"] == "generated"}
        assert generated_then and len(generated_then) < STORIES
        assert all(paid_per_story(server, ids)[s] == 1 for s in generated_then)
        assert server.total_successes == len(generated_then)  # a graceful stop loses no paid critique

        # 2. A hard crash part-way through the resumed run.
        second = start_build(source, out, server.base_url)
        wait_for_paid(server, second, server.total_successes + 15)
        second.kill()
        second.communicate(timeout=30)
        time.sleep(1.0)  # answers already on their way are written (and counted) by now
        paid_at_crash = paid_per_story(server, ids)
        on_disk = {s for s, r in records_on_disk(out).items() if r["status"] == "generated"}
        lost = {s for s, n in paid_at_crash.items() if n and s not in on_disk}
        assert all(n <= 1 for n in paid_at_crash.values())
        # A critique's record reaches the disk before its message leaves the queue, so a crash costs at most
        # the calls in flight: one per worker (the emulated path's bound is concurrency x batch size).
        assert len(lost) <= CONCURRENCY

        # 3. Run to completion.
        third = start_build(source, out, server.base_url)
        stdout, stderr = third.communicate(timeout=120)
        assert third.returncode == 0, stderr
        assert "resumed" in stderr

        records = records_on_disk(out)
        paid = paid_per_story(server, ids)
        statuses = server.status_counts()

    print(f"\nsaved at Ctrl-C {len(generated_then)}, on disk after the crash {len(on_disk)}, cut off by the "
          f"crash {len(lost)}; server answers {statuses}")
    # Every story has exactly one feedback record: a critique, or a failure/skip with its reason.
    assert sorted(records) == sorted(ids)
    generated = {s for s, r in records.items() if r["status"] == "generated"}
    for record in records.values():
        if record["status"] == "generated":
            assert record["feedback"].strip() and record["error"] is None
            assert record["usage"]["total_tokens"] > 0 and record["cost_usd"] > 0
            # An API error is never mistaken for feedback.
            assert "Rate limit" not in record["feedback"] and "server had an error" not in record["feedback"]
        else:
            assert record["feedback"] is None and record["error"]["code"] and record["error"]["message"]
    assert len(generated) >= STORIES - 2  # with five attempts per delivery a dead letter is very unlikely

    # Each generated story was paid for once; only the critiques the crash cut off were paid for again.
    assert {s: paid[s] for s in generated} == {s: 2 if s in lost else 1 for s in generated}
    assert all(paid[s] == 0 for s in ids if s not in generated)
    assert sum(paid.values()) == len(generated) + len(lost)

    # The faults really happened, and the pipeline retried through them.
    assert statuses.get(429, 0) > 0 and statuses.get(500, 0) > 0 and statuses.get(0, 0) > 0
    assert any(r["attempts"] > 1 for r in records.values() if r["status"] == "generated")

    # The manifest of the last run accounts for the build: reused from earlier runs, generated now.
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["stories"] == STORIES and counts["generated"] == len(generated)
    assert counts["reused"] == len(on_disk) and counts["generated_now"] == len(generated) - len(on_disk)
    assert counts["failed"] == STORIES - len(generated) and counts["skipped_budget"] == 0
    dataset = (out / "train.jsonl").read_text() + (out / "validation.jsonl").read_text()
    assert "Rate limit" not in dataset and "server had an error" not in dataset
    assert f"{counts['generated']} ({counts['generated_now']} / {counts['reused']})" in stdout


def test_sigterm_stops_a_build_like_ctrl_c_and_the_resume_pays_nothing_twice(tmp_path):
    # What `timeout`, systemd, containers and CI send: the critiques in flight are finished and kept.
    source = tmp_path / "stories.jsonl"
    ids = write_stories(source)
    out = tmp_path / "out"
    with FakeOpenAIServer(api_key=KEY, reply=critique, latency=(0.2, 0.4), seed=12) as server:
        first = start_build(source, out, server.base_url, concurrency=8)
        wait_for_paid(server, first, 10)
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)
        assert first.returncode == 128 + signal.SIGTERM, stderr
        assert "error: terminated: re-run the same command to continue" in stderr
        assert "Traceback" not in stderr
        time.sleep(0.5)  # any answer still on its way would be counted by now
        kept = {s for s, r in records_on_disk(out).items() if r["status"] == "generated"}
        assert kept and server.total_successes == len(kept)  # nothing paid was lost

        second = start_build(source, out, server.base_url, concurrency=8)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr
        paid = paid_per_story(server, ids)
    assert paid == dict.fromkeys(ids, 1)


def coach(*args: str, base_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coach", *args], cwd=REPO, env=environment(base_url),
                          capture_output=True, text=True, timeout=180)


def test_dead_lettered_stories_are_listed_with_their_cause_and_redriven_once_fixed(tmp_path):
    out = tmp_path / "out"
    build = ("build", "--limit", "12", "--provider", "openai", "--model", "gpt-4o-mini", "--build-id", "dead-letters",
             "--out", str(out))
    with FakeOpenAIServer(api_key=KEY, reply=critique, failure_rate=1.0, rate_limit_share=1.0,
                          retry_after=0.01) as server:
        broken = coach(*build, base_url=server.base_url)  # the API refuses everything: 429 on every call
        assert broken.returncode != 0
        assert "12 messages are in the dead-letter queue" in broken.stderr
        # The hint names the folder the build used, and the error names why the dataset is empty.
        assert f"coach redrive dead-letters --out {out}" in broken.stderr
        assert "12 stories have no critique (upstream_rate_limited: 12)" in broken.stderr

        listed = coach("redrive", "dead-letters", "--out", str(out), "--list", base_url=server.base_url)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0] == "build dead-letters: 12 dead-lettered stories"
        assert all("upstream_rate_limited: gave up after 3 deliveries" in line for line in lines[1:13])
        assert server.total_successes == 0

        server.configure(failure_rate=0.0)  # the cause is fixed
        redriven = coach("redrive", "dead-letters", "--out", str(out), base_url=server.base_url)
        assert redriven.returncode == 0, redriven.stderr
        counts = json.loads((out / "manifest.json").read_text())["counts"]
        assert counts["generated"] == counts["generated_now"] == 12 and counts["failed"] == 0
        assert server.total_successes == 12 and max(server.success_counts.values()) == 1

        again = coach("redrive", "dead-letters", "--out", str(out), base_url=server.base_url)
        assert again.returncode == 0 and "0 dead-lettered stories" in again.stdout
        assert "nothing to redrive" in again.stdout and server.total_successes == 12


def test_an_unreachable_completion_api_fails_the_build_at_once_with_the_cause(tmp_path):
    from tests.fakes.openai_server import unused_base_url

    out = tmp_path / "out"
    base_url = unused_base_url()
    result = coach("build", "--limit", "12", "--provider", "openai", "--model", "gpt-4o-mini",
                   "--build-id", "unreachable", "--out", str(out),
                   base_url=base_url)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: upstream_unreachable: "), result.stderr
    assert base_url in lines[0] and "OPENAI_BASE_URL" in lines[0]
    assert not (out / ".state").exists()  # no story was stored, queued or tried
