"""The `coach` command line: one module per subcommand, imported only when used."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
from collections.abc import Iterator
from typing import NoReturn

from coach.errors import CoachError

# subcommand -> (module under coach.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build_cmd", "run a whole dataset build locally"),
    "builds": ("builds_cmd", "list this folder's local builds with their status, counts and cost"),
    "validate": ("validate_cmd", "judge critiques in a JSONL file with the validator's rules"),
    "critique": ("critique_cmd", "critique one story file (or - for stdin)"),
    "serve": ("serve_cmd", "serve the critique API over HTTP on a loopback port"),
    "redrive": ("redrive_cmd", "move a local build's dead-letter messages back to the story queue"),
    "models": ("models_cmd", "list published fine-tuned models with their scores, roll back, or promote"),
    "eval": ("eval_cmd", "score a critic on a build's held-out stories and planted flaws; apply the gate"),
    "report": ("report_cmd", "write a build's report.html and dataset card again from its stored records"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with the command line's error shape: one `error: invalid_option: ...` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: invalid_option: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="coach", description="Creative Writing Coach")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen subcommand's module is imported: `coach validate` must not pay for moto.
        if name == chosen:
            importlib.import_module(f"coach.cli.{module}").add_arguments(command_parser)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (sent by `timeout`, systemd, containers and CI) stops a command exactly as Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # Without this the process dies at once: a critique paid for in flight is never saved, and the
    # re-run pays for it again. As an interrupt, the workers finish their batches and keep the records.
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = ["coach", *argv]
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(f"coach.cli.{COMMANDS[args.command][0]}")
    try:
        with _sigterm_as_interrupt():
            return int(module.run(args) or 0)
    except CoachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("error: terminated: re-run the same command to continue", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("error: interrupted: re-run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
