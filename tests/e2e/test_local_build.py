"""The whole local dataset build, as a user runs it: `coach build` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from coach.domain.critic import write_critique
from coach.domain.prompt import extract_story
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def coach(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COACH_", "AWS_ENDPOINT"))}
    # A published model goes to a file of this call, never to the checkout's .coach/registry.json.
    full_env["COACH_LOCAL_REGISTRY"] = str(Path(tempfile.mkdtemp(prefix="coach-registry-")) / "registry.json")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "coach", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_samples_build_end_to_end_then_resume_generates_nothing(tmp_path):
    out = tmp_path / "out"
    first = coach("build", "--source", "samples", "--build-id", "e2e-samples", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "accepted" in first.stdout and str(out) in first.stdout
    m = manifest(out)
    counts = m["counts"]
    assert m["provider"] == "offline" and m["model"] == "coach-offline-critic-v1"
    assert counts["stories"] >= 20 and counts["accepted"] >= 15
    assert counts["generated_now"] == counts["stories"] and counts["failed"] == 0
    assert m["fine_tune"]["status"] == "skipped" and m["fine_tune"]["reason"]
    assert m["tokens"]["usage_estimated"] is True  # the offline critic's usage is a character estimate
    assert m["tokens"]["estimated"] in (True, False) and m["prompt_version"]
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    validation = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert len(train) == counts["train_examples"] and len(validation) == counts["validation_examples"]
    assert len(train) + len(validation) == counts["accepted"]
    for example in train + validation:
        assert [msg["role"] for msg in example["messages"]] == ["system", "user", "assistant"]
        assert "you" in example["messages"][2]["content"].lower()

    second = coach("build", "--source", "samples", "--build-id", "e2e-samples", "--out", str(out))
    assert second.returncode == 0, second.stderr
    again = manifest(out)["counts"]
    assert again["generated_now"] == 0 and again["reused"] == counts["stories"]
    assert again["accepted"] == counts["accepted"]
    # The same stories land in the same split.
    assert (out / "train.jsonl").read_text() == "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in train)


def test_openai_provider_runs_through_the_sdk(tmp_path):
    out = tmp_path / "out"
    # A real model writes a different critique for each story; the offline critic stands in for it.
    def reply(messages):
        title, text = extract_story(messages)
        return write_critique(text, title=title)

    with FakeOpenAIServer(api_key="sk-local-test", reply=reply) as server:
        result = coach("build", "--source", "samples", "--limit", "12", "--provider", "openai",
                       "--model", "gpt-4o-mini", "--build-id", "e2e-openai", "--out", str(out),
                       env={"OPENAI_API_KEY": "sk-local-test", "OPENAI_BASE_URL": server.base_url})
        assert result.returncode == 0, result.stderr
        assert server.total_successes == 12
        assert all(n == 1 for n in server.success_counts.values())
        m = manifest(out)
        assert m["provider"] == "openai" and m["model"] == "gpt-4o-mini"
        assert m["counts"]["generated"] == 12
        assert m["tokens"]["prompt_tokens"] > 0 and m["cost"]["generation_usd"] > 0
        assert m["tokens"]["usage_estimated"] is False  # the API's own counts, not a guess
        # The editor prompt reached the server intact, with the end marker as a stop sequence.
        sent = server.chat_requests()[0]
        assert sent.status == 200 and "=== END STORY ===" in (sent.user_content or "")
        assert sent.user_content.rstrip().endswith("FEEDBACK:")
        assert sent.params.get("stop")


@pytest.mark.parametrize("fails", [False, True])
def test_fine_tune_is_started_followed_and_published(tmp_path, fails):
    from tests.fakes.openai_server import FineTuneFailure

    def reply(messages):
        title, text = extract_story(messages)
        return write_critique(text, title=title)

    out = tmp_path / "out"
    registry = tmp_path / "work" / ".coach" / "registry.json"
    failure = FineTuneFailure(code="invalid_training_file", message="Line 3 has too many tokens.") if fails else None
    # No shutdown dates: this test is about the job, not about OpenAI's calendar (tested with the handlers).
    with FakeOpenAIServer(api_key="sk-ft", reply=reply, fine_tune_failure=failure, shutdown_dates={}) as server:
        result = coach("build", "--limit", "14", "--provider", "openai", "--model", "gpt-4o-mini",
                       "--build-id", "e2e-ft", "--out", str(out),
                       "--fine-tune", "--fine-tune-backend", "openai", "--base-model", "gpt-4o-mini-2024-07-18",
                       "--wait", "--poll-seconds", "0.05", "--legacy-export",
                       env={"OPENAI_API_KEY": "sk-ft", "OPENAI_BASE_URL": server.base_url,
                            "COACH_LOCAL_REGISTRY": str(registry)})
        [job] = server.jobs.values()
    fine_tune = manifest(out)["fine_tune"]
    assert job.metadata["build_id"] == "e2e-ft" and job.method["type"] == "supervised"
    if fails:
        assert result.returncode == 4, result.stderr
        assert fine_tune["status"] == "failed"
        assert fine_tune["error"]["code"] == "invalid_training_file"
        assert "Line 3 has too many tokens." in result.stderr + result.stdout
    else:
        assert result.returncode == 0, result.stderr
        assert fine_tune["status"] == "succeeded" and fine_tune["fine_tuned_model"].startswith("ft:")
        assert "published ft:" in result.stderr
        # The model was evaluated on the held-out stories before it was published, as in the state machine.
        evaluation = manifest(out)["evaluation"]
        assert evaluation["passed"] and evaluation["model"] == fine_tune["fine_tuned_model"]
        assert result.stderr.index("evaluated:") < result.stderr.index("published ft:")
        assert fine_tune["trained_tokens"] > 0 and (out / "fine-tune-events.jsonl").exists()
        # The registry outlives the command: a later `coach models list` from the same folder sees the model.
        listed = coach("models", "list", "--json", env={"COACH_LOCAL_REGISTRY": str(registry)})
        assert listed.returncode == 0, listed.stderr
        assert fine_tune["fine_tuned_model"] in listed.stdout
    assert registry.exists() is (not fails)  # a failed job publishes nothing
    assert (out / "train_legacy.jsonl").exists()


def test_a_fine_tune_the_gate_refuses_is_not_published(tmp_path):
    from tests.fakes.critic_models import blind

    out = tmp_path / "out"
    # Teacher and student both write grounded praise that never names a problem.
    with FakeOpenAIServer(api_key="sk-ft", reply=blind, shutdown_dates={}) as server:
        result = coach("build", "--limit", "14", "--provider", "openai", "--model", "gpt-4o-mini",
                       "--build-id", "e2e-blind", "--out", str(out), "--fine-tune", "--fine-tune-backend", "openai",
                       "--base-model", "gpt-4o-mini-2024-07-18", "--wait", "--poll-seconds", "0.05",
                       env={"OPENAI_API_KEY": "sk-ft", "OPENAI_BASE_URL": server.base_url})
    assert result.returncode == 5, result.stderr
    assert "not published:" in result.stderr and "planted-flaw lift +0.00 is below the floor" in result.stderr
    assert "published ft:" not in result.stderr
    evaluation = manifest(out)["evaluation"]
    assert evaluation["passed"] is False and evaluation["reasons"] == ["flaw_lift_below_floor"]


def test_directory_source_with_an_undecodable_file(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    samples = sorted((REPO / "shared" / "coach" / "samples").glob("*.md"))[:14]
    for path in samples:  # a writer's own folder: plain .txt files with no heading
        (stories / f"{path.stem}.txt").write_text(path.read_text().split("\n", 2)[2])
    (stories / "broken.txt").write_bytes(b"caf\xe9 \x81\x82 not utf-8 " * 40)
    out = tmp_path / "out"
    result = coach("build", "--source", str(stories), "--build-id", "e2e-dir", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "broken.txt" in result.stderr  # the skipped file is named, not silently dropped
    assert manifest(out)["counts"]["decode_errors"] == 1
    assert manifest(out)["counts"]["stories"] == 14


@pytest.mark.parametrize(("args", "env", "code"), [
    (["--source", "/nonexistent/stories"], {}, "source_not_found"),
    (["--provider", "gpt5"], {}, "unknown_provider"),
    (["--provider", "openai", "--model", "gpt-4o-mini"], {}, "provider_key_missing"),
    (["--provider", "openai"], {"OPENAI_API_KEY": "sk-x"}, "model_required"),
    (["--build-id", "Bad Id!"], {}, "invalid_option"),
    (["--source", "EMPTY"], {}, "source_empty"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, env, code):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(empty) if a == "EMPTY" else a for a in args]
    out = tmp_path / "out"
    result = coach("build", *args, "--out", str(out), env=env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(f"error: {code}"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "manifest.json").exists() and not (out / "train.jsonl").exists()


def test_a_failed_fine_tune_start_leaves_a_manifest_that_says_so(tmp_path):
    from tests.fakes.openai_server import Fault

    def reply(messages):
        title, text = extract_story(messages)
        return write_critique(text, title=title)

    out = tmp_path / "out"
    env_of = {"OPENAI_API_KEY": "sk-stale"}
    with FakeOpenAIServer(api_key="sk-stale", reply=reply, shutdown_dates={}) as server:
        env = {**env_of, "OPENAI_BASE_URL": server.base_url}
        args = ("build", "--limit", "14", "--provider", "openai", "--model", "gpt-4o-mini",
                "--build-id", "e2e-stale", "--out", str(out))
        first = coach(*args, env=env)
        assert first.returncode == 0, first.stderr
        assert manifest(out)["fine_tune"]["reason"].startswith("fine-tuning is not enabled")
        server.configure(fault_paths=("/v1/files",))
        server.push_script(Fault(403, code="upload_refused", message="This key may not upload files."))
        second = coach(*args, "--fine-tune", "--fine-tune-backend", "openai", "--base-model",
                       "gpt-4o-mini-2024-07-18", env=env)
    assert second.returncode == 2, second.stdout + second.stderr
    code = second.stderr.strip().splitlines()[-1].split(":")[1].strip()
    assert "This key may not upload files." in second.stderr
    m = manifest(out)
    assert m["fine_tune"]["status"] == "failed" and m["fine_tune"]["error"]["code"] == code
    assert m["failure"]["step"] == "fine-tune" and m["failure"]["code"] == code
    assert (out / "train.jsonl").read_text()  # the dataset itself is complete


def test_a_failed_assembly_replaces_an_earlier_manifest_and_keeps_rejected(tmp_path):
    out = tmp_path / "out"
    first = coach("build", "--limit", "14", "--build-id", "e2e-big", "--out", str(out))
    assert first.returncode == 0, first.stderr
    second = coach("build", "--limit", "4", "--build-id", "e2e-small", "--out", str(out))
    assert second.returncode == 2 and "error: dataset_too_small" in second.stderr
    m = manifest(out)
    assert m["build_id"] == "e2e-small" and m["failure"]["code"] == "dataset_too_small"
    assert m["failure"]["step"] == "assemble" and m["counts"]["stories"] == 4
    assert (out / "rejected.jsonl").exists()  # the message says to inspect it: it is there
    assert not (out / "train.jsonl").exists()  # an earlier build's dataset does not pose as this one's


def test_skipped_stories_are_counted_by_reason_in_the_summary_and_the_manifest(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    for path in sorted((REPO / "shared" / "coach" / "samples").glob("*.md"))[:14]:
        (stories / f"{path.stem}.txt").write_text(path.read_text().split("\n", 2)[2])
    (stories / "huge.txt").write_text("All work and no play makes a dull story. " * 12_500)  # about 500 KB
    (stories / "tiny.txt").write_text("Four words, no more.")
    out = tmp_path / "out"
    result = coach("build", "--source", str(stories), "--build-id", "e2e-skips", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert manifest(out)["counts"]["skipped"] == {"too_long": 1, "too_short": 1}
    assert "too_long 1, too_short 1" in result.stdout and "too_long 1, too_short 1" in result.stderr


def test_a_folder_of_only_unreadable_files_says_why_there_are_no_stories(tmp_path):
    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / "photo.txt").write_bytes(bytes(range(256)) * 8)
    result = coach("build", "--source", str(stories), "--build-id", "e2e-binary", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no_stories: ") and "unreadable: 1" in last and "photo.txt" in last
    assert "the source had none" not in last


def test_fine_tune_without_wait_prints_the_job_and_the_command_that_follows_it(tmp_path):
    import shlex

    def reply(messages):
        title, text = extract_story(messages)
        return write_critique(text, title=title)

    out = tmp_path / "out"
    with FakeOpenAIServer(api_key="sk-nowait", reply=reply, fine_tune_polls_per_state=1, shutdown_dates={}) as server:
        env = {"OPENAI_API_KEY": "sk-nowait", "OPENAI_BASE_URL": server.base_url}
        started = coach("build", "--limit", "14", "--provider", "openai", "--model", "gpt-4o-mini",
                        "--build-id", "e2e-nowait", "--out", str(out), "--fine-tune", "--fine-tune-backend",
                        "openai", "--base-model", "gpt-4o-mini-2024-07-18", "--poll-seconds", "0.05", env=env)
        assert started.returncode == 0, started.stderr
        [job_id] = server.jobs
        assert f"fine-tuning job {job_id} is" in started.stdout
        command = next(line.strip() for line in started.stdout.splitlines() if line.strip().startswith("coach "))
        argv = shlex.split(command)
        assert argv[-1] == "--wait" and "--build-id" in argv and "e2e-nowait" in argv
        def uploads() -> list[str]:
            return sorted(f.filename for f in server.files.values() if f.purpose == "fine-tune")

        sent = uploads()
        followed = coach(*argv[1:], env=env)
        assert followed.returncode == 0, followed.stderr
        assert list(server.jobs) == [job_id] and uploads() == sent  # the same job, nothing sent again
    assert manifest(out)["fine_tune"]["status"] == "succeeded"
