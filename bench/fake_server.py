"""The OpenAI-compatible test server in its own process, for the benchmarks that build against it.

Its own process, so its threads do not share the benchmark's interpreter lock (a remote API would not).
`start_server` runs this file, which starts the server, prints its base URL and serves until stdin closes:

    .venv/bin/python bench/fake_server.py [--latency L] [--critic]

Every completion takes `latency` seconds. With `--critic` the answer is the offline critic's critique of the
sample a story was made from (bench_local_build's stories name it in their first paragraph); without it, the
test server's default critique.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench"


def start_server(latency: float, *, critic: bool = False) -> tuple[subprocess.Popen, str]:
    """The test server in its own process, and its base URL."""
    command = [sys.executable, __file__, "--latency", repr(latency), *(["--critic"] if critic else [])]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http"):
        process.kill()
        sys.exit("the test server did not start")
    return process, base_url


def stop_server(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.stdin:
        process.stdin.close()
    process.wait(timeout=timeout)


def critic_reply() -> Callable[[list[dict[str, Any]]], str]:
    from coach.domain.critic import write_critique
    from coach.domain.prompt import extract_story

    known: dict[str, str] = {}

    def critique(messages: list[dict[str, Any]]) -> str:
        # Written once per sample: the dataset gets distinct critiques while answering stays as cheap as a
        # fixed reply, so the server's own work does not add to the latency under test.
        title, story = extract_story(messages, keep_truncation_notice=True)
        sample = story.split("\n\n", 1)[0]
        if sample not in known:
            known[sample] = str(write_critique(story, title=title))
        return known[sample]

    return critique


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--critic", action="store_true")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
    from tests.fakes.openai_server import FakeOpenAIServer

    reply = critic_reply() if args.critic else None
    server = FakeOpenAIServer(api_key=KEY, latency=args.latency, reply=reply).start()
    print(server.base_url, flush=True)
    sys.stdin.read()  # runs until the benchmark closes stdin
    server.stop()


if __name__ == "__main__":
    main()
