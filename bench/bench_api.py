"""Benchmark of the critique API's own overhead (a script, not a test).

The real handler (gate, Powertools resolver and validation, model choice, prompt, output guard, style
notes, serialisation) runs behind the local API Gateway in a child process, with a provider that answers
instantly with a fixed critique, so every millisecond measured is the API's, not a model's. Clients are
threads in this process on keep-alive connections.

Reported, for a sequential client and for N concurrent clients:
- handler time: inside the function, per request (what a Lambda invocation would bill, minus cold start);
- latency: what the client sees (HTTP, the local gateway, queueing behind the one warm "container").

    .venv/bin/python bench/bench_api.py                      # 50 clients, 2,000 requests
    .venv/bin/python bench/bench_api.py --clients 10 --requests 500 --json out/bench-api.json
    .venv/bin/python bench/bench_api.py --url http://127.0.0.1:8080   # a running coach serve, any provider
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

FIXED_CRITIQUE = (
    "Your opening puts me in the scene at once: you trust a plain, concrete sentence, and the reader settles "
    "in because of it. The dialogue is where your voice is strongest, since you let the characters talk past "
    "each other and leave the tension in what they do not say.\n\n"
    "Where the story loses force is the middle stretch, where you tell me what the narrator feels instead of "
    "showing it. Try cutting the sentence that names the feeling and give me one physical detail, a hand "
    "that will not stay still or a glance toward the door, so the reader does the work.\n\n"
    "Your word choice is at its best when it is plain and specific, and the closing image lands because you "
    "let it stand without explanation. Keep that restraint as you revise the middle."
)


# -- the server (child process) ------------------------------------------------------------------------------

class ZeroLatencyProvider:
    name = "offline"
    model = "zero-latency"

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 800,
                 stop: list[str] | None = None, temperature: float = 0.7) -> Any:
        from coach.adapters.completion import Completion
        from coach.domain.records import Usage

        return Completion(text=FIXED_CRITIQUE, finish_reason="stop", model=self.model, latency_ms=0,
                          usage=Usage(prompt_tokens=500, completion_tokens=150, total_tokens=650))


def _serve(conn: Any) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "writing-coach-bench")
    os.environ.pop("COACH_API_KEY", None)
    os.environ.pop("COACH_MODEL_PARAMETER", None)
    from coach.api import service
    from coach.local.http_gateway import LocalApiGateway
    from coach.local.lambda_runtime import load_handler_module

    service.use_provider_factory(lambda config, choice: ZeroLatencyProvider())
    handler = load_handler_module("critique").lambda_handler
    timings: list[float] = []

    def timed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return handler(event, context)
        finally:
            timings.append(time.perf_counter() - started)

    gateway = LocalApiGateway(timed, port=0).start()
    conn.send(gateway.url)
    while True:
        command = conn.recv()
        if command == "reset":
            timings.clear()
            conn.send("ok")
        elif command == "report":
            conn.send(list(timings))
        else:
            gateway.stop()
            conn.send("bye")
            return


# -- the clients ---------------------------------------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), in the values' unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _client(url: str, body: bytes, count: int, latencies: list[float], statuses: dict[int, int],
            lock: threading.Lock, start: threading.Event) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Content-Type": "application/json"}
    mine: list[float] = []
    seen: dict[int, int] = {}
    start.wait()
    try:
        for _ in range(count):
            began = time.perf_counter()
            try:
                conn.request("POST", "/critiques", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()  # counted, and the next request opens a new connection
                status = 0
            mine.append(time.perf_counter() - began)
            seen[status] = seen.get(status, 0) + 1
    finally:
        conn.close()
    with lock:
        latencies.extend(mine)
        for status, n in seen.items():
            statuses[status] = statuses.get(status, 0) + n


def run_phase(url: str, body: bytes, clients: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock, start = threading.Lock(), threading.Event()
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=_client, args=(url, body, n, latencies, statuses, lock, start))
               for n in per_client if n]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"clients": clients, "requests": len(latencies), "elapsed_s": round(elapsed, 3),
            "throughput_rps": round(len(latencies) / elapsed, 1), "statuses": statuses,
            "latency_ms": summary(latencies)}


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": round(percentile(ms, 50), 2), "p90": round(percentile(ms, 90), 2),
            "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2) if ms else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--requests", type=int, default=2_000, help="requests in the concurrent phase")
    parser.add_argument("--sequential", type=int, default=300, help="requests in the one-client phase")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--story", type=Path, default=ROOT / "shared/coach/samples/the-last-bus.md",
                        help="story file to send (default: a bundled 2.4 KB sample)")
    parser.add_argument("--url", help="benchmark a running server instead (handler times then unknown)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")

    story = args.story.read_text(encoding="utf-8")
    body = json.dumps({"story": story}).encode()
    conn = child = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        parent_end, child_end = multiprocessing.Pipe()
        child = multiprocessing.get_context("spawn").Process(target=_serve, args=(child_end,), daemon=True)
        child.start()
        conn = parent_end
        url = conn.recv()

    def handler_times() -> dict[str, float] | None:
        if conn is None:
            return None
        conn.send("report")
        return summary(conn.recv())

    def reset() -> None:
        if conn is not None:
            conn.send("reset")
            conn.recv()

    try:
        run_phase(url, body, 1, args.warmup)
        reset()
        sequential = run_phase(url, body, 1, args.sequential)
        sequential["handler_ms"] = handler_times()
        reset()
        concurrent = run_phase(url, body, args.clients, args.requests)
        concurrent["handler_ms"] = handler_times()
    finally:
        if conn is not None and child is not None:
            conn.send("stop")
            conn.recv()
            child.join(timeout=10)

    results = {
        "provider": "zero-latency (fixed critique)" if not args.url else f"whatever serves {url}",
        "story_chars": len(story), "cpus": os.cpu_count(), "python": platform.python_version(),
        "sequential": sequential, "concurrent": concurrent,
    }
    print(f"critique API overhead: story {len(story):,} chars, {results['provider']}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'phase':<14}{'requests':>9}{'rps':>8}  {'latency p50/p99 ms':>20}  "
          f"{'handler p50/p99 ms':>20}  statuses (0 = connection error)")
    for name, phase in (("1 client", sequential), (f"{args.clients} clients", concurrent)):
        lat, han = phase["latency_ms"], phase["handler_ms"]
        handler = f"{han['p50']:.1f} / {han['p99']:.1f}" if han else "n/a"
        print(f"{name:<14}{phase['requests']:>9}{phase['throughput_rps']:>8}  "
              f"{lat['p50']:>9.1f} / {lat['p99']:<8.1f}  {handler:>20}  {phase['statuses']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    ok = all(set(p["statuses"]) == {200} for p in (sequential, concurrent))
    if not ok:
        print("some requests did not get a critique: see statuses", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
