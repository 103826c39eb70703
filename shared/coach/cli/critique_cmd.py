"""`coach critique FILE|-`: one story's critique, as the API would answer it, on the command line.

The same service as POST /critiques (limits, model choice, output guard, retry), without HTTP. A
markdown heading on the first line becomes the title. Exit codes: 0 a critique, 2 a problem with the
input or the options, 1 the model or the service failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from coach.errors import InputError

EXIT_SERVICE_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a UTF-8 text or markdown file, or - for stdin")
    parser.add_argument("--title", help="the story's title (default: a markdown heading on the first line)")
    parser.add_argument("--provider", choices=("offline", "openai", "bedrock"),
                        help="default: COACH_PROVIDER or offline")
    parser.add_argument("--model", help="model for the openai or bedrock provider (default: COACH_MODEL; "
                                        "bedrock: amazon.nova-pro-v1:0)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON response body")


def read_story(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read()
        where = "stdin"
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise InputError(f"no such file: {name}", code="file_not_found")
        if not path.is_file():
            raise InputError(f"not a file: {name}", code="not_a_file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}", code="file_unreadable") from None
        where = name
    if b"\x00" in data:
        raise InputError(f"{where} is binary, not text", code="not_text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8",
                         code="not_utf8") from None
    if not text.strip():
        raise InputError(f"{where} is empty", code="empty_story")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _request(text: str, title: str | None) -> object:
    from coach.adapters.sources import split_title
    from coach.api.errors import from_validation_errors
    from coach.api.models import CritiqueRequest

    if title is None:
        heading, body = split_title(text)
        if heading and body.strip():
            title, text = heading.strip("#* ").strip(), body
    try:
        return CritiqueRequest(story=text, title=title)
    except ValidationError as exc:
        problem = from_validation_errors(exc.errors())
        raise InputError(problem.message, code=problem.code) from None


def _print_text(response: object) -> None:
    from coach.api.models import CritiqueResponse

    assert isinstance(response, CritiqueResponse)
    print(response.critique)
    if response.style:
        print("\nStyle notes (measured in your text):")
        for note in response.style:
            print(f"  - {note.message}")
            if note.examples:
                print("    e.g. " + "; ".join(f'"{e}"' for e in note.examples[:3]))
    usage = response.usage
    tokens = f"{usage.total_tokens}{' (estimated)' if usage.estimated else ''}"
    truncated = "yes, cut at a paragraph boundary" if response.truncated else "no"
    print(f"\nmodel: {response.model} | prompt: {response.prompt_version} | tokens: {tokens} | "
          f"truncated: {truncated}")


def run(args: argparse.Namespace) -> int:
    from coach.api.config import ApiConfig, require_provider_key
    from coach.api.errors import ApiError
    from coach.api.service import CritiqueService

    overrides = {k: v for k, v in (("provider", args.provider), ("model", args.model)) if v}
    config = ApiConfig.from_env().model_copy(update=overrides)
    require_provider_key(config)
    text = read_story(args.file)
    request = _request(text, args.title)
    try:
        response = CritiqueService(config).critique(request)  # type: ignore[arg-type]
    except ApiError as exc:
        if exc.status < 500 and exc.status != 429:
            raise InputError(exc.message, code=exc.code) from None
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_SERVICE_FAILED
    if args.json:
        print(json.dumps(response.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        _print_text(response)
    return 0
