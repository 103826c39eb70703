"""Bad input on the command line: one `error: <code>: <message>` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from coach.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits for bad flags
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    return code, err


def one_error_line(err: str, code: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("action", ["list", "rollback"])
def test_models_without_an_aws_region_says_how_to_give_one(capsys, monkeypatch, tmp_path, action):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("COACH_LOCAL_REGISTRY", str(tmp_path / "no-registry.json"))  # no local build published
    code, err = run(capsys, "models", action)
    assert code == 2
    assert "--region" in one_error_line(err, "missing_aws_region")


@pytest.mark.parametrize("port", ["-1", "99999", "http"])
def test_serve_refuses_a_port_out_of_range(capsys, port):
    code, err = run(capsys, "serve", "--port", port)
    assert code == 2
    assert "--port" in one_error_line(err, "invalid_option")


def test_build_into_a_file_or_an_impossible_folder_fails_before_any_work(capsys, tmp_path):
    story = tmp_path / "story.md"
    story.write_text("Once upon a time.")
    code, err = run(capsys, "build", "--out", str(story))
    assert code == 2 and "is a file" in one_error_line(err, "out_not_a_folder")
    assert story.read_text() == "Once upon a time."
    code, err = run(capsys, "build", "--out", str(story / "inside"))
    assert code == 2
    one_error_line(err, "out_unwritable")
    code, err = run(capsys, "build", "--out", "/proc/nope")
    assert code == 2
    one_error_line(err, "out_unwritable")


@pytest.mark.parametrize("source", ["http://example.com/stories", "s3:/bucket/stories", "ftp://host/x",
                                    "https://example.com/a.jsonl"])
def test_a_url_source_is_not_taken_for_a_folder(capsys, tmp_path, source):
    code, err = run(capsys, "build", "--source", source, "--out", str(tmp_path / "out"))
    assert code == 2
    line = one_error_line(err, "source_unsupported")
    assert "s3://bucket/prefix" in line and "a folder" in line


def test_an_s3_source_without_an_endpoint_explains_the_local_emulator(capsys, tmp_path):
    code, err = run(capsys, "build", "--source", "s3://my-stories/2026", "--out", str(tmp_path / "out"))
    assert code == 2
    line = one_error_line(err, "source_s3_needs_endpoint")
    assert "--endpoint-url" in line and "aws s3 sync s3://my-stories/2026" in line


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--budget", "-1"], "--budget: "),
    (["--validation-fraction", "0.9"], "--validation-fraction: "),
    (["--wait"], "--wait follows a fine-tuning job: add --fine-tune"),
    (["--fine-tune", "--poll-seconds", "-1"], "--poll-seconds must be more than 0"),
    (["--min-chars", "500", "--max-chars", "100"], "--min-chars"),
    (["--concurrency", "0"], "--concurrency must be >= 1"),
    (["--batch-size", "2"], "--batch-size is the SQS batch of the emulated generator: add --emulate-aws"),
    (["--emulate-aws", "--batch-size", "11"], "--batch-size must be between 1 and 10"),
])
def test_build_options_are_named_as_flags_and_meaningless_ones_refused(capsys, tmp_path, argv, fragment):
    code, err = run(capsys, "build", *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    line = one_error_line(err, "invalid_option")
    assert fragment in line and "budget_usd" not in line and "validation_fraction:" not in line


def test_redrive_refuses_a_batch_size_without_the_emulator(capsys, tmp_path):
    code, err = run(capsys, "redrive", "some-build", "--out", str(tmp_path / "out"), "--batch-size", "3")
    assert code == 2
    assert "add --endpoint-url" in one_error_line(err, "invalid_option")


def test_validate_given_a_folder_says_it_is_a_folder(capsys, tmp_path):
    code, err = run(capsys, "validate", str(tmp_path))
    assert code == 2
    assert "is a folder" in one_error_line(err, "input_is_a_folder")


def test_the_summary_shows_an_unknown_cost_and_the_budget():
    from pathlib import Path

    from coach.domain.records import BuildManifest, CostEstimate
    from coach.local.build import LocalBuildResult, summary_table

    manifest = BuildManifest(build_id="b", provider="openai", model="my-llama", prompt_version="p",
                             budget_usd=2.0, cost=CostEstimate(unpriced_models=["my-llama"]))
    table = summary_table(LocalBuildResult(manifest=manifest, out=Path("out"), elapsed_s=1.0,
                                           generation_complete=True))
    rows = dict(line.split("  ", 1) for line in table.splitlines())
    assert rows["generation cost"].strip() == "unknown (no price for my-llama: add it to COACH_PRICE_TABLE)"
    assert rows["budget"].strip() == "$2.0000"
    assert "left out (shard batches failed)" not in rows


def test_the_summary_names_stories_left_out_by_failed_shard_batches():
    from pathlib import Path

    from coach.domain.records import BuildManifest, ShardFailures
    from coach.local.build import LocalBuildResult, summary_table

    manifest = BuildManifest(build_id="b", provider="offline", model="offline-critic", prompt_version="p",
                             shard_failures=ShardFailures(batches=1, stories=400, causes={"Lambda.Unknown": 1}))
    table = summary_table(LocalBuildResult(manifest=manifest, out=Path("out"), elapsed_s=1.0,
                                           generation_complete=True))
    rows = dict(line.split("  ", 1) for line in table.splitlines())
    assert rows["left out (shard batches failed)"].strip() == "400 stories in 1 batch (Lambda.Unknown 1)"
