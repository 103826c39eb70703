"""`coach critique FILE|-` and `coach serve` as a user runs them."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coach.cli import main
from coach.domain.critic import OFFLINE_MODEL
from coach.domain.validation import validate_feedback
from tests.api.api_support import STORY, http_call, post_story
from tests.fakes.openai_server import FakeOpenAIServer, Fault
from tests.support.signals import default_sigint


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.md"
    path.write_text("# The Keeper\n\n" + STORY + "\n", encoding="utf-8")
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    saved = sys.argv
    try:
        code = main(list(argv))
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return code, out, err


def test_a_file_gets_a_critique_and_the_style_notes(capsys, story_file):
    code, out, err = run_cli(capsys, "critique", str(story_file))

    assert code == 0, err
    critique, _, rest = out.partition("\nStyle notes (measured in your text):\n")
    assert validate_feedback(critique.strip(), story=STORY).accepted
    assert rest.lstrip().startswith("- ")
    assert f"model: {OFFLINE_MODEL}" in rest and "truncated: no" in rest


def test_json_prints_the_api_response_body(capsys, story_file):
    code, out, _ = run_cli(capsys, "critique", str(story_file), "--json")
    assert code == 0
    body = json.loads(out)
    assert set(body) == {"critique", "model", "prompt_version", "truncated", "usage", "style"}
    assert body["model"] == OFFLINE_MODEL


def test_stdin_is_read_with_a_dash(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STORY.encode("utf-8"))))
    code, out, _ = run_cli(capsys, "critique", "-", "--json")
    assert code == 0
    assert json.loads(out)["critique"]


@pytest.mark.parametrize(("content", "code_name"), [
    (None, "file_not_found"),
    ("dir", "not_a_file"),
    (b"", "empty_story"),
    (b"  \n\n\t", "empty_story"),
    ("café, every morning".encode("latin-1"), "not_utf8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_text"),
    (b"Too short to critique.", "story_too_short"),
])
def test_file_problems_are_one_line_errors_with_exit_2(capsys, tmp_path, content, code_name):
    path = tmp_path / "story.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)

    code, out, err = run_cli(capsys, "critique", str(path))

    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {code_name}: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_openai_provider_and_its_failures(capsys, story_file, monkeypatch):
    with FakeOpenAIServer(api_key="sk-test") as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        code, out, _ = run_cli(capsys, "critique", str(story_file), "--provider", "openai",
                               "--model", "gpt-4.1-mini", "--json")
        assert code == 0
        assert json.loads(out)["model"] == "gpt-4.1-mini"

        upstream.push_script(Fault(429, retry_after=2))
        code, out, err = run_cli(capsys, "critique", str(story_file), "--provider", "openai",
                                 "--model", "gpt-4.1-mini")
        assert code == 1
        assert err.startswith("error: upstream_rate_limited: ")


def test_coach_serve_runs_until_interrupted(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "coach", "serve", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+) \(x-api-key required", banner)
        failed = process.poll() is not None and process.stderr is not None
        assert match, banner + (process.stderr.read() if failed and process.stderr else "")
        url = match.group(1)

        assert post_story(url, STORY).status == 401
        assert post_story(url, STORY, headers={"x-api-key": "cli-key"}).status == 200
        assert http_call(url, "GET", "/health").status == 200
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)  # generous: a loaded 2-core machine is slow to wind down
    assert code == 0
    assert "POST /critiques 200" in (process.stderr.read() if process.stderr else "")


def test_coach_serve_refuses_a_public_address(capsys):
    code, _, err = run_cli(capsys, "serve", "--host", "0.0.0.0", "--port", "0")
    assert code == 2
    assert err.startswith("error: not_loopback: ")


def test_critique_with_openai_and_no_key_is_one_line_and_exit_2(capsys, story_file, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("COACH_OPENAI_SECRET", raising=False)
    code, out, err = run_cli(capsys, "critique", str(story_file), "--provider", "openai")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("error: provider_key_missing: "), err


@pytest.mark.timeout(60)  # before the check, the server started and served until interrupted
def test_serve_with_openai_and_no_key_refuses_to_start(capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("COACH_OPENAI_SECRET", raising=False)
    saved = dict(os.environ)
    try:
        code, out, err = run_cli(capsys, "serve", "--provider", "openai", "--model", "gpt-4o-mini", "--port", "0")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "critique API on" not in out
    assert len(lines) == 1 and lines[0].startswith("error: provider_key_missing: "), err
