"""What every fake HTTP service in tests/fakes shares: a threaded server on 127.0.0.1 that starts and stops
with the fake, a quiet request handler, and a stop event that releases stalled answers at once."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled handlers are released by the stop event instead
    request_queue_size = 128  # the default 5 resets connections when tests fire many calls at once


class QuietHandler(BaseHTTPRequestHandler):
    """Routes every method to `_dispatch(method)`; the fake keeps its own request log."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raise NotImplementedError


class LoopbackServer:
    """Base of a fake: `with Fake(...) as fake:` serves on a free port; `fake.port` names it.

    A subclass sets `handler` (a QuietHandler subclass; it finds the fake as `self.fake`) and `thread_name`,
    and calls `super().__init__()` before using `_stop`.
    """

    handler: type[QuietHandler]
    thread_name = "fake-service"

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        bound = type("_BoundHandler", (self.handler,), {"fake": self})
        httpd = QuietServer(("127.0.0.1", 0), bound)
        self._httpd = httpd
        self._stop.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{self.thread_name} is not running")
        return int(self._httpd.server_address[1])


class PaidCalls:
    """The request log and the paid-call ledger of a fake model service.

    A subclass keeps `_lock`, `_log` (request entries), `_successes` (a Counter of answered calls per
    distinct user message: what a story was paid for) and `_usage` (token totals) and feeds them through
    `_record` and `count_success`; a test reads them back here.
    """

    _lock: Any
    _log: list[Any]
    _successes: Any
    _usage: dict[str, int]

    @property
    def requests(self) -> list[Any]:
        with self._lock:
            return list(self._log)

    @property
    def success_counts(self) -> dict[str, int]:
        """Paid answers per distinct user message."""
        with self._lock:
            return dict(self._successes)

    def successes_containing(self, fragment: str) -> int:
        """Paid answers whose user message contains `fragment` (e.g. a story's first line)."""
        with self._lock:
            return sum(n for text, n in self._successes.items() if fragment in text)

    @property
    def total_successes(self) -> int:
        with self._lock:
            return sum(self._successes.values())

    @property
    def usage_totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._usage)

    def _record(self, entry: Any) -> None:
        with self._lock:
            self._log.append(entry)

    def count_success(self, text: str, delta: int) -> None:
        with self._lock:
            self._successes[text] += delta
            if self._successes[text] <= 0:
                del self._successes[text]
