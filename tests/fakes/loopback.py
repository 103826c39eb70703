"""What every fake HTTP service in tests/fakes shares: a threaded server on 127.0.0.1 that starts and stops
with the fake, a quiet request handler, and a stop event that releases stalled answers at once; and what
the fake model services share on top: the request log, the paid-call ledger, runtime settings, a seeded
random source and the reply queue."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

T = TypeVar("T")


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

    def _write(self, status: int, data: bytes, headers: dict[str, str]) -> bool:
        """Answer `status` with `headers` and `data`; False when the client had gone (it timed out), so
        nothing was delivered."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False


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


class Snapshot(Generic[T]):
    """A read-only attribute that copies the fake's private `attr` under its `_lock`, so a test reads a
    consistent copy while handler threads keep writing."""

    def __init__(self, attr: str, copy: Callable[[Any], T]) -> None:
        self.attr = attr
        self.copy = copy
        self.name = attr

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        with instance._lock:
            return self.copy(getattr(instance, self.attr))

    def __set__(self, instance: object, value: Any) -> None:
        raise AttributeError(f"'{self.name}' is read-only")


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

    requests: Snapshot[list[Any]] = Snapshot("_log", list)
    success_counts: Snapshot[dict[str, int]] = Snapshot("_successes", dict)  # paid answers per user message
    usage_totals: Snapshot[dict[str, int]] = Snapshot("_usage", dict)

    def successes_containing(self, fragment: str) -> int:
        """Paid answers whose user message contains `fragment` (e.g. a story's first line)."""
        with self._lock:
            return sum(n for text, n in self._successes.items() if fragment in text)

    @property
    def total_successes(self) -> int:
        with self._lock:
            return sum(self._successes.values())

    def _record(self, entry: Any) -> None:
        with self._lock:
            self._log.append(entry)

    def count_success(self, text: str, delta: int) -> None:
        with self._lock:
            self._successes[text] += delta
            if self._successes[text] <= 0:
                del self._successes[text]

    def deliver_paid(self, text: str | None, send: Callable[[], bool]) -> None:
        """Send an answer that is paid for `text` (None: not paid). It is counted before it is written, so a
        client that has read it always sees the count, and taken back when `send` could not deliver it."""
        if text is not None:
            self.count_success(text, +1)
        if not send() and text is not None:
            self.count_success(text, -1)


class ModelService(PaidCalls):
    """Runtime settings, a seeded random source and the reply queue of a fake model service.

    A subclass names its settings (`settings`, and `settings_label` for the error on an unknown one), sets
    `reply_type` (its Reply: made from a text) and `default_text` (the text of an unscripted answer, from the
    request; a staticmethod), and calls `_init_service` in its constructor.
    """

    settings: ClassVar[frozenset[str]] = frozenset()
    settings_label: ClassVar[str] = "fake service"
    reply_type: ClassVar[Callable[[str], Any]]
    default_text: ClassVar[Callable[[Any], str]]
    reply: Any
    latency: float | tuple[float, float]

    def _init_service(self, *, seed: int, replies: Iterable[Any], usage_keys: Iterable[str]) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._replies: list[Any] = list(replies)
        self._log = []
        self._successes = Counter()
        self._usage = dict.fromkeys(usage_keys, 0)

    def configure(self, **changes: Any) -> None:
        """Change settings at runtime, e.g. `configure(latency=(0.01, 0.05))`."""
        with self._lock:
            for name, value in changes.items():
                if name not in self.settings:
                    raise AttributeError(f"unknown {self.settings_label} setting '{name}'")
                setattr(self, name, self._setting(name, value))

    def _setting(self, name: str, value: Any) -> Any:
        """The value kept for a setting; a subclass converts the ones it keeps in another type."""
        return value

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def queue_replies(self, *replies: Any) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _reply_setting(self, model: str) -> Any:
        """The configured reply for `model`: a text, a callable of the request, or None."""
        return self.reply

    def _pick_reply(self, request: Any, scripted: Any, model: str = "") -> Any:
        """A scripted reply, else the next queued one, else the configured one, else `default_text`."""
        if scripted is not None:
            return scripted
        with self._lock:
            if self._replies:
                queued = self._replies.pop(0)
                return self.reply_type(queued) if isinstance(queued, str) else queued
            reply = self._reply_setting(model)
        if callable(reply):
            return self.reply_type(reply(request))
        return self.reply_type(reply if isinstance(reply, str) else self.default_text(request))

    def _draw_latency(self) -> float:
        with self._lock:
            latency = self.latency
            return self._rng.uniform(*latency) if isinstance(latency, tuple) else float(latency or 0.0)
