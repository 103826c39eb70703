"""Every story source behind one function: `load_stories(spec) -> SourceResult`.

Sources and their story ids:
- samples: the bundled `coach/samples/*.md` (first line `# Title`) -> `sample-<file stem>`; curated, so
  not length-filtered.
- directory: `.txt` and `.md` files, searched recursively (hidden files and folders skipped), in sorted
  order -> `file-<slug of stem>-<8 hex of sha1(text)>`; the path may also be one such file.
- jsonl: one object a line with "text" (or "story") and optional "id" and "title" -> the line's id when
  it is a valid story id, else `jsonl-<12 hex of sha1(text)>`.
- s3: `s3://bucket/prefix`, the same rules as a directory -> `s3-<slug of stem>-<8 hex>`.
- reddit: top-level replies of a subreddit's posts (see `coach.adapters.reddit`) -> `reddit-<comment id>`.

Files are read as UTF-8 (a byte-order mark is dropped; UTF-16 with a byte-order mark is accepted) with
line endings normalised to LF. Markdown files become plain paragraphs; a title comes from a leading
heading (removed from the text) or else the file name. What cannot be used is counted, never lost
silently: `skipped` by reason, `decode_errors` with a warning naming the file.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from coach.domain.records import STORY_ID_PATTERN, Provenance, SourceSpec, Story, slugify
from coach.domain.reddit_text import clean_plain_text, markdown_to_plain, normalise_newlines
from coach.errors import SourceError

STORY_SUFFIXES = (".txt", ".md")
_STORY_ID = re.compile(STORY_ID_PATTERN)
_ATX_HEADING = re.compile(r"^\s{0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(?:=+|-+)[ \t]*$")


class SourceResult(BaseModel):
    stories: list[Story]
    decode_errors: int = 0  # files that could not be decoded (skipped with a warning)
    skipped: dict[str, int] = Field(default_factory=dict)  # reason -> count
    warnings: list[str] = Field(default_factory=list)  # one line each


class _Collector:
    """Takes candidate stories in order; drops duplicates and out-of-range lengths; stops at the limit."""

    def __init__(self, spec: SourceSpec, *, limit: int | None, seen_ids: set[str] | None) -> None:
        self.spec = spec
        self.limit = limit
        self.earlier = frozenset(seen_ids or ())  # taken by earlier builds (only with skip_seen)
        self.seen: set[str] = set()  # taken by this build
        self.stories: list[Story] = []
        self.skipped: Counter[str] = Counter()
        self.warnings: list[str] = []
        self.decode_errors = 0

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.stories) >= self.limit

    def offer(self, story: Story, *, curated: bool = False) -> None:
        if story.story_id in self.earlier:
            self.skipped["seen_in_earlier_build"] += 1
            return
        if story.story_id in self.seen:
            self.skipped["duplicate"] += 1
            return
        if not curated:
            size = len(story.text)
            if size < self.spec.min_chars:
                self.skipped["too_short"] += 1
                return
            if size > self.spec.max_chars:
                self.skipped["too_long"] += 1
                return
        self.seen.add(story.story_id)
        self.stories.append(story)

    def decode_failed(self, name: str, why: str) -> None:
        self.decode_errors += 1
        self.warnings.append(f"skipped {name}: {why}")

    def result(self) -> SourceResult:
        return SourceResult(stories=self.stories, decode_errors=self.decode_errors,
                            skipped=dict(sorted(self.skipped.items())), warnings=self.warnings)


def load_stories(
    spec: SourceSpec,
    *,
    limit: int | None = None,
    seen_ids: set[str] | None = None,
    reddit: Any = None,
    s3_client: Any = None,
) -> SourceResult:
    """Collect up to `limit` stories from `spec`, skipping ids in `seen_ids` (taken by earlier builds).

    `reddit` is a `praw.Reddit` (made from the environment when None); `s3_client` a boto3 S3 client
    (`boto3.client("s3")` when None). Raises SourceError with a stable code when the source itself is
    unusable (missing, empty, malformed, refused).
    """
    collector = _Collector(spec, limit=limit, seen_ids=seen_ids)
    if spec.kind == "samples":
        _from_samples(collector)
    elif spec.kind == "directory":
        _from_directory(collector, _require_path(spec))
    elif spec.kind == "jsonl":
        _from_jsonl(collector, _require_path(spec))
    elif spec.kind == "s3":
        _from_s3(collector, _require_path(spec), s3_client)
    elif spec.kind == "reddit":
        _from_reddit(collector, reddit)
    else:  # pragma: no cover - SourceSpec.kind is a closed Literal
        raise SourceError(f"unknown source kind '{spec.kind}'", code="source_unknown")
    return collector.result()


def _require_path(spec: SourceSpec) -> str:
    if not spec.path:
        raise SourceError(f"source kind '{spec.kind}' needs a path", code="source_path_missing")
    return spec.path


# -- text files ------------------------------------------------------------------------------------

class _Undecodable(Exception):
    """A file that is not text we can read; the message says why, for the warning."""


def decode_text(data: bytes) -> str:
    """Bytes of a story file to text: UTF-8 (BOM dropped) or UTF-16 with a BOM; binary is refused."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _Undecodable("not valid UTF-16 text") from None
    if b"\x00" in data:
        raise _Undecodable("binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Undecodable(f"not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8") from None


def split_title(text: str) -> tuple[str | None, str]:
    """(title, rest) when the first non-blank line is a markdown heading, else (None, text)."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None, text
    heading = _ATX_HEADING.match(lines[first])
    if heading:
        return heading.group(1).strip(), "\n".join(lines[first + 1:])
    candidate = lines[first].strip()
    underlined = first + 1 < len(lines) and _SETEXT_UNDERLINE.match(lines[first + 1])
    # "Title\n=====" is a heading; a sentence over a dash line is the end of a scene, not a title.
    if underlined and len(candidate) <= 80 and not candidate.endswith((".", ",", ";", ":", "!", "?", '"', "”")):
        return candidate, "\n".join(lines[first + 2:])
    return None, text


def title_from_name(stem: str) -> str:
    words = re.sub(r"[-_\s]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else stem


@dataclass(frozen=True)
class _TextFile:
    name: str  # what warnings and provenance call it: a relative path or an s3:// URL
    stem: str
    suffix: str
    size: int
    read: Callable[[], bytes]


def _story_from_file(item: _TextFile, *, id_prefix: str, source: str, collector: _Collector,
                     curated: bool = False) -> None:
    if not curated and item.size > 4 * collector.spec.max_chars + 4096:
        # Over the limit whatever its encoding (a character is at most 4 bytes): skip without reading.
        collector.skipped["too_long"] += 1
        return
    try:
        data = item.read()
    except OSError as exc:  # unreadable (permissions, vanished): count it like an undecodable file
        collector.decode_failed(item.name, f"cannot be read ({exc.strerror or type(exc).__name__})")
        return
    if not data.strip():
        collector.skipped["empty_file"] += 1
        return
    try:
        raw = normalise_newlines(decode_text(data))
    except _Undecodable as exc:
        collector.decode_failed(item.name, str(exc))
        return
    heading, body = split_title(raw)
    title = (markdown_to_plain(heading).replace("\n", " ") if heading else "") or title_from_name(item.stem)
    text = clean_plain_text(body) if curated or item.suffix != ".md" else markdown_to_plain(body)
    if not text.strip():
        collector.skipped["empty_file"] += 1
        return
    if curated:
        story_id = f"{id_prefix}-{item.stem}"
        if not _STORY_ID.match(story_id):
            story_id = f"{id_prefix}-{slugify(item.stem)}"
    else:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
        story_id = f"{id_prefix}-{slugify(item.stem)}-{digest}"
    collector.offer(
        Story(story_id=story_id, title=title, text=text, source=source,
              provenance=Provenance(path=item.name)),
        curated=curated,
    )


def _take(collector: _Collector, items: Iterable[_TextFile], **kwargs: Any) -> None:
    for item in items:
        if collector.full:
            return
        _story_from_file(item, collector=collector, **kwargs)


# -- samples ---------------------------------------------------------------------------------------

def samples_root() -> Traversable:
    return files("coach") / "samples"


def _from_samples(collector: _Collector) -> None:
    root = samples_root()
    entries = sorted((p for p in root.iterdir() if p.is_file() and p.name.endswith(".md")),
                     key=lambda p: p.name)
    if not entries:
        raise SourceError("the bundled sample stories are missing: reinstall creative-writing-coach",
                          code="source_empty")
    items = [_TextFile(name=f"samples/{p.name}", stem=p.name[:-3], suffix=".md", size=0, read=p.read_bytes)
             for p in entries]
    _take(collector, items, id_prefix="sample", source="samples", curated=True)


# -- directory -------------------------------------------------------------------------------------

def _hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") for part in parts)


def _from_directory(collector: _Collector, path: str) -> None:
    root = Path(path).expanduser()
    if not root.exists():
        raise SourceError(f"story folder '{path}' does not exist: give the path of a folder of .txt/.md files",
                          code="source_not_found")
    if root.is_file() and root.suffix.lower() in STORY_SUFFIXES:
        found = [root]  # one story file: the build takes it as it would inside a folder
        root = root.parent
    elif not root.is_dir():
        raise SourceError(f"'{path}' is not a folder or a .txt/.md story: give a folder of stories, one "
                          "story file, or a .jsonl file (--source stories.jsonl)", code="source_not_a_directory")
    else:
        found = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root).parts))
    stories = [p for p in found if p.suffix.lower() in STORY_SUFFIXES]
    if not stories:
        others = f" (it holds {len(found)} other files)" if found else ""
        raise SourceError(f"no .txt or .md files in '{path}'{others}: put one story in each file",
                          code="source_empty")
    items = [_TextFile(name=p.relative_to(root).as_posix(), stem=p.stem, suffix=p.suffix.lower(),
                       size=p.stat().st_size, read=p.read_bytes) for p in stories]
    _take(collector, items, id_prefix="file", source="directory")


# -- JSONL -----------------------------------------------------------------------------------------

def _from_jsonl(collector: _Collector, path: str) -> None:
    file = Path(path).expanduser()
    if not file.exists():
        raise SourceError(f"JSONL file '{path}' does not exist: give the path of a .jsonl file",
                          code="source_not_found")
    if not file.is_file():
        raise SourceError(f"'{path}' is not a file: use kind 'directory' for a folder of stories",
                          code="source_not_a_file")
    lines = file.read_bytes().split(b"\n")
    records = 0
    for number, raw in enumerate(lines, start=1):
        if collector.full:
            break
        story = _jsonl_story(raw, number, path)
        if story is None:
            continue
        records += 1
        if isinstance(story, str):
            collector.skipped[story] += 1
            continue
        collector.offer(story)
    if not records and not collector.full:
        raise SourceError(f"JSONL file '{path}' has no stories: write one {{\"text\": ...}} object a line",
                          code="source_empty")


def _jsonl_story(raw: bytes, number: int, path: str) -> Story | str | None:
    """A Story, a skip reason, or None for a blank line. A malformed line raises `bad_jsonl`."""
    def bad(why: str) -> SourceError:
        return SourceError(f"{path} line {number}: {why}", code="bad_jsonl")

    if number == 1:
        raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise bad("not UTF-8 text (is this a JSONL file?)") from None
    if not line:
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise bad(f"expected a JSON object, got {type(record).__name__}")
    text = record.get("text", record.get("story"))
    if not isinstance(text, str):
        raise bad('needs a "text" (or "story") string')
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise bad('"title" must be a string')
    text = clean_plain_text(text)
    if not text:
        return "empty_text"
    given = record.get("id")
    if isinstance(given, str | int) and _STORY_ID.match(str(given)):
        story_id = str(given)
    else:  # from the text, not the line: two files' first lines are different stories
        story_id = f"jsonl-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"
    return Story(story_id=story_id, title=(title or "").strip(), text=text, source="jsonl",
                 provenance=Provenance(path=f"{path}:{number}"))


# -- S3 --------------------------------------------------------------------------------------------

def parse_s3_url(url: str) -> tuple[str, str]:
    match = re.match(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$", url.strip())
    if not match:
        raise SourceError(f"'{url}' is not an S3 location: write s3://bucket/prefix", code="bad_s3_path")
    return match.group(1), match.group(2) or ""


def _from_s3(collector: _Collector, url: str, s3_client: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_url(url)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    keys: list[tuple[str, int]] = []
    try:
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend((obj["Key"], obj["Size"]) for obj in page.get("Contents", []))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise SourceError(f"S3 bucket '{bucket}' does not exist: check the source path",
                              code="source_not_found") from None
        raise SourceError(f"cannot list {url} ({code or 'error'}): check the bucket name and permissions",
                          code="source_unreadable") from None
    except BotoCoreError as exc:
        raise SourceError(f"cannot reach S3 for {url} ({type(exc).__name__})", code="source_unreadable") from None

    def visible(key: str) -> bool:
        relative = PurePosixPath(key[len(prefix):].lstrip("/"))
        return not key.endswith("/") and not _hidden(relative.parts)

    files_ = sorted((k, s) for k, s in keys if visible(k))
    stories = [(k, s) for k, s in files_ if PurePosixPath(k).suffix.lower() in STORY_SUFFIXES]
    if not stories:
        if not keys:
            raise SourceError(f"nothing under {url}: upload .txt/.md story files there",
                              code="source_not_found")
        raise SourceError(f"no .txt or .md files under {url} (it holds {len(files_)} other objects)",
                          code="source_empty")

    def reader(key: str) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "error")
                raise SourceError(f"cannot read s3://{bucket}/{key} ({code})", code="source_unreadable") from None
        return read

    items = [_TextFile(name=f"s3://{bucket}/{key}", stem=PurePosixPath(key).stem,
                       suffix=PurePosixPath(key).suffix.lower(), size=size, read=reader(key))
             for key, size in stories]
    _take(collector, items, id_prefix="s3", source="s3")


# -- Reddit ----------------------------------------------------------------------------------------

def _from_reddit(collector: _Collector, reddit: Any) -> None:
    from coach.adapters.reddit import iter_reddit_stories, make_reddit

    client = reddit if reddit is not None else make_reddit()
    stories: Iterator[Story] = iter_reddit_stories(client, collector.spec, collector.skipped, collector.warnings)
    for story in stories:
        collector.offer(story)
        if collector.full:
            break
