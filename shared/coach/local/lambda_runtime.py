"""Load a handler from functions/<name>/app.py and invoke it the way Lambda does."""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from coach.errors import ConfigError
from coach.settings import Settings


def functions_dir() -> Path:
    """The checkout's functions/ folder (COACH_FUNCTIONS_DIR overrides)."""
    override = Settings.from_env().functions_dir
    candidates = [Path(override)] if override else []
    candidates += [Path(__file__).resolve().parents[3] / "functions", Path.cwd() / "functions"]
    for candidate in candidates:
        if (candidate / "generator" / "app.py").is_file():
            return candidate
    raise ConfigError("cannot find the functions/ folder: run coach from the project checkout "
                      "or set COACH_FUNCTIONS_DIR", code="functions_not_found")


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: float = 120.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _start: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._start)) * 1000))


@functools.cache
def load_handler_module(name: str) -> ModuleType:
    path = functions_dir() / name / "app.py"
    module_name = f"coach_function_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load handler {path}", code="functions_not_found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def invoke(name: str, event: dict[str, Any], *, timeout_s: float = 120.0) -> Any:
    module = load_handler_module(name)
    return module.lambda_handler(event, LambdaContext(function_name=f"coach-{name}", timeout_s=timeout_s))
