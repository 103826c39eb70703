"""`coach serve`: the critique API on a loopback port, through the real handler.

HTTP requests become API Gateway proxy events for functions/critique/app.py, so what runs locally is
what runs behind API Gateway. The API key (when one is configured) is checked here because there is no
API Gateway to do it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from coach.errors import InputError

DEFAULT_PORT = 8080


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0 (any free port) to 65535")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--provider", help="offline (default), bedrock or openai; env COACH_PROVIDER")
    parser.add_argument("--model", help="base model for the bedrock or openai provider; env COACH_MODEL")
    parser.add_argument("--api-key",
                        help="require this key in x-api-key on POST /critiques; env COACH_API_KEY")
    parser.add_argument("--model-parameter",
                        help="SSM parameter naming a published fine-tuned model; env COACH_MODEL_PARAMETER")
    parser.add_argument("--endpoint-url",
                        help="AWS endpoint for the SSM parameter (an emulator such as moto)")
    parser.add_argument("--max-story-chars", type=int, help="largest story accepted (default 100000)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument("--verbose", action="store_true", help="show the handler's JSON logs")


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InputError(f"--host {host} is not a loopback address: coach serve is plain HTTP for this "
                         "machine only (deploy the stack for a public endpoint)", code="not_loopback")


def configure_environment(args: argparse.Namespace) -> None:
    """Flags become the environment the handler reads, as the SAM template sets it in the cloud."""
    env = os.environ
    for flag, name in (("provider", "COACH_PROVIDER"), ("model", "COACH_MODEL"), ("api_key", "COACH_API_KEY"),
                       ("model_parameter", "COACH_MODEL_PARAMETER"), ("endpoint_url", "AWS_ENDPOINT_URL")):
        value = getattr(args, flag, None)
        if value is not None:
            env[name] = str(value)
    if getattr(args, "max_story_chars", None) is not None:
        if args.max_story_chars < 1:
            raise InputError("--max-story-chars must be at least 1", code="bad_option")
        env["COACH_MAX_STORY_CHARS"] = str(args.max_story_chars)
    use_local_registry(env)
    if getattr(args, "endpoint_url", None):
        # An emulator accepts any credentials; never let a local run reach a real account's profile.
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "writing-coach")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "WritingCoach")
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if getattr(args, "verbose", False):
        env["POWERTOOLS_LOG_LEVEL"] = "INFO"
    else:
        env.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    provider = env.get("COACH_PROVIDER", "offline")
    if provider not in ("offline", "openai", "bedrock"):
        raise InputError(f"unknown provider '{provider}': use offline, openai or bedrock", code="unknown_provider")
    if provider == "openai" and not env.get("COACH_MODEL"):
        from coach.adapters.completion import OPENAI_MODEL_REQUIRED

        raise InputError(OPENAI_MODEL_REQUIRED, code="model_required")


def use_local_registry(env: Any) -> None:
    """With no AWS endpoint, serve what local builds of this working folder published (its registry file)."""
    from coach.local.parameter_file import MODEL_PARAMETER, registry_path

    if env.get("AWS_ENDPOINT_URL") or env.get("COACH_MODEL_REGISTRY_FILE"):
        return
    path = registry_path()
    if path.is_file():
        env["COACH_MODEL_REGISTRY_FILE"] = str(path.resolve())
        env.setdefault("COACH_MODEL_PARAMETER", MODEL_PARAMETER)


def critique_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from coach.local.lambda_runtime import load_handler_module

    return load_handler_module("critique").lambda_handler


def start_gateway(args: argparse.Namespace, *, log: Callable[[str], None] | None = None) -> Any:
    """Configure, load the handler and start serving in a background thread; returns the gateway."""
    from coach.api.config import ApiConfig, require_provider_key
    from coach.local.http_gateway import LocalApiGateway

    _check_loopback(args.host)
    configure_environment(args)
    require_provider_key(ApiConfig.from_env())
    handler = critique_handler()
    try:
        gateway = LocalApiGateway(handler, host=args.host, port=args.port, access_log=log)
    except OSError as exc:
        raise InputError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                         code="port_unavailable") from None
    return gateway.start()


def run(args: argparse.Namespace) -> int:
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    gateway = start_gateway(args, log=log)
    keyed = ("x-api-key required on POST /critiques" if os.environ.get("COACH_API_KEY")
             else "no API key required")
    print(f"critique API on {gateway.url} ({keyed}); contract: {gateway.url}/swagger", flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
    return 0
