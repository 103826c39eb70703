"""Stories from the bundled samples, a folder of files, a JSONL file and an S3 prefix."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from coach.adapters import sources
from coach.adapters.sources import load_stories
from coach.domain.records import SourceSpec
from coach.errors import SourceError

STORY = (
    "The lift stopped between the ninth and tenth floors, and the woman beside you said, without "
    "looking up from her phone, that this happened every Thursday. You asked why nobody fixed it. "
    "She said that on Thursdays it was the only place in the building where nobody could find her."
)
OTHER = STORY.replace("Thursday", "Tuesday").replace("Thursdays", "Tuesdays")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
FILE_ID = re.compile(r"^file-[a-z0-9-]+-[0-9a-f]{8}$")


def _spec(kind: str, path: object = None, **fields: object) -> SourceSpec:
    return SourceSpec(kind=kind, path=str(path) if path is not None else None, **{"min_chars": 100, **fields})


def _by_path(result: sources.SourceResult) -> dict[str, object]:
    return {s.provenance.path: s for s in result.stories}


# -- samples ---------------------------------------------------------------------------------------

def test_bundled_samples_load_with_their_titles_and_no_length_filter() -> None:
    root = sources.samples_root()
    names = sorted(p.name for p in root.iterdir() if p.name.endswith(".md"))
    # min_chars at its maximum would drop every story of another source; samples are curated.
    result = load_stories(SourceSpec(kind="samples", min_chars=20_000, max_chars=20_000))
    assert [s.story_id for s in result.stories] == [f"sample-{n[:-3]}" for n in names]
    for story in result.stories:
        first_line = (root / f"{story.story_id[len('sample-'):]}.md").read_text(encoding="utf-8").split("\n")[0]
        assert first_line == f"# {story.title}"
        assert not story.text.startswith("#")
        assert story.source == "samples"
    assert "NOTICE" not in {s.provenance.path for s in result.stories}
    assert result.skipped == {} and result.decode_errors == 0


def test_samples_honour_the_limit_and_earlier_builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "NOTICE").write_text("These stories are original.\n", encoding="utf-8")
    for name in ("b-second", "a-first", "c-third"):
        (tmp_path / f"{name}.md").write_text(f"# {name.title()}\n\n{STORY}\n", encoding="utf-8")
    monkeypatch.setattr(sources, "samples_root", lambda: tmp_path)
    result = load_stories(SourceSpec(kind="samples"), limit=2, seen_ids={"sample-a-first"})
    assert [s.story_id for s in result.stories] == ["sample-b-second", "sample-c-third"]
    assert result.stories[0].title == "B-Second"
    assert result.skipped == {"seen_in_earlier_build": 1}


# -- a folder of files -----------------------------------------------------------------------------

@pytest.fixture
def awkward_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "stories"
    (folder / "2023" / "drafts").mkdir(parents=True)
    (folder / ".obsidian").mkdir()
    files = {
        "bom.txt": codecs.BOM_UTF8 + STORY.encode(),
        "windows.txt": ("First line of the story,\r\nsecond line.\r\n\r\n" + OTHER + "\r\n").encode(),
        "old-mac.txt": ("Carriage returns only.\r" + STORY.replace("lift", "elevator") + "\r").encode(),
        "empty.txt": b"",
        "blank.md": b"  \n\n\t\n",
        "picture.txt": PNG,
        "latin1.txt": ("Caf\xe9 au lait, " + STORY).encode("latin-1"),
        "utf16.txt": codecs.BOM_UTF16_LE + ("Notepad saved this. " + STORY).encode("utf-16-le"),
        "The_Night_Lift.md": ("\ufeff# The *Night* Lift\r\n\r\n" + STORY.replace("lift", "*lift*")
                              + "\r\n\r\n[Part two](https://example.com)\r\n").encode(),
        "short.txt": b"Too short to be a story.",
        "notes.docx": b"PK\x03\x04 not a story",
        "2023/drafts/deep.md": ("Chapter One\n===========\n\n" + OTHER.replace("woman", "man")).encode(),
        ".obsidian/hidden.md": STORY.encode(),
        ".hidden.txt": STORY.encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_a_folder_of_awkward_files(awkward_folder: Path) -> None:
    result = load_stories(_spec("directory", awkward_folder))
    stories = _by_path(result)
    assert sorted(stories) == sorted(["2023/drafts/deep.md", "The_Night_Lift.md", "bom.txt", "old-mac.txt",
                                      "utf16.txt", "windows.txt"])
    assert stories["bom.txt"].text == STORY  # the byte-order mark is gone
    assert stories["bom.txt"].title == "Bom"
    windows = stories["windows.txt"].text
    assert "\r" not in windows and windows.startswith("First line of the story,\nsecond line.\n\n")
    assert "\r" not in stories["old-mac.txt"].text
    assert stories["utf16.txt"].text.startswith("Notepad saved this.")
    night = stories["The_Night_Lift.md"]
    assert night.title == "The Night Lift"  # heading, markdown removed, then dropped from the text
    assert night.text == STORY + "\n\nPart two"
    assert stories["2023/drafts/deep.md"].title == "Chapter One"
    assert all(FILE_ID.match(s.story_id) and s.source == "directory" for s in result.stories)
    assert result.decode_errors == 2
    assert any("latin1.txt" in w and "UTF-8" in w for w in result.warnings)
    assert any("picture.txt" in w and "binary" in w for w in result.warnings)
    assert result.skipped == {"empty_file": 2, "too_short": 1}


@pytest.mark.parametrize(("text", "title", "starts"), [
    ("# The Lift\n\nBody.", "The Lift", "Body."),
    ("\n\nGoing Up\n--------\nBody.", "Going Up", "Body."),
    ("The doors closed.\n---\nBody.", None, "The doors closed."),
    ("No heading here.\nBody.", None, "No heading here."),
])
def test_titles_come_from_a_leading_heading_only(text: str, title: str | None, starts: str) -> None:
    found, rest = sources.split_title(text)
    assert found == title
    assert rest.strip().startswith(starts)


def test_file_ids_follow_the_text(tmp_path: Path) -> None:
    (tmp_path / "My Story!.txt").write_text(STORY, encoding="utf-8")
    first = load_stories(_spec("directory", tmp_path)).stories[0].story_id
    assert first == load_stories(_spec("directory", tmp_path)).stories[0].story_id
    assert first.startswith("file-my-story-")
    (tmp_path / "My Story!.txt").write_text(OTHER, encoding="utf-8")
    assert load_stories(_spec("directory", tmp_path)).stories[0].story_id != first


def test_the_same_story_twice_is_taken_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lift.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "lift.txt").write_text(STORY + "\n\n", encoding="utf-8")
    result = load_stories(_spec("directory", tmp_path))
    assert len(result.stories) == 1 and result.skipped == {"duplicate": 1}


def test_limit_and_length_limits(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"story-{i}.txt").write_text(f"{i}. {STORY}", encoding="utf-8")
    (tmp_path / "z-long.txt").write_text(STORY * 40, encoding="utf-8")
    assert [s.provenance.path for s in load_stories(_spec("directory", tmp_path), limit=2).stories] == [
        "story-0.txt", "story-1.txt"]
    result = load_stories(_spec("directory", tmp_path, max_chars=2_000))
    assert len(result.stories) == 5 and result.skipped == {"too_long": 1}


def test_earlier_builds_stories_are_duplicates(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(STORY, encoding="utf-8")
    taken = {s.story_id for s in load_stories(_spec("directory", tmp_path)).stories}
    again = load_stories(_spec("directory", tmp_path), seen_ids=taken)
    assert again.stories == [] and again.skipped == {"seen_in_earlier_build": 1}


def test_a_missing_folder_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("directory", missing))
    assert caught.value.code == "source_not_found"
    assert str(missing) in caught.value.message and "\n" not in caught.value.message


def test_one_story_file_is_one_story(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "two.txt").write_text(STORY + " And another.", encoding="utf-8")
    result = load_stories(_spec("directory", tmp_path / "one.txt"))
    assert len(result.stories) == 1 and result.stories[0].provenance.path == "one.txt"


def test_a_file_that_is_not_a_story_is_refused_with_the_sources_that_exist(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(PNG)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("directory", tmp_path / "photo.jpg"))
    assert caught.value.code == "source_not_a_directory"
    assert "--source stories.jsonl" in caught.value.message and "kind" not in caught.value.message


def test_a_folder_without_story_files(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(PNG)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("directory", tmp_path))
    assert caught.value.code == "source_empty"
    assert "1 other file" in caught.value.message


# -- JSONL -----------------------------------------------------------------------------------------

def _jsonl(path: Path, *records: object, newline: str = "\n", bom: bool = False) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + newline.join(lines).encode() + newline.encode())
    return path


def test_jsonl_with_bom_windows_endings_and_blank_lines(tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "stories.jsonl",
                  {"id": "lift-1", "title": "The Lift", "text": STORY},
                  "",
                  {"story": OTHER.replace("\n", "\r\n"), "id": "not a valid id!"},
                  {"text": "   "},
                  {"id": 42, "text": STORY + " Again."},
                  newline="\r\n", bom=True)
    result = load_stories(_spec("jsonl", file))
    assert [s.story_id for s in result.stories][::2] == ["lift-1", "42"]
    assert re.fullmatch(r"jsonl-[0-9a-f]{12}", result.stories[1].story_id)
    assert result.stories[0].title == "The Lift" and result.stories[0].text == STORY
    assert result.stories[1].provenance.path == f"{file}:3"
    assert all(s.source == "jsonl" for s in result.stories)
    assert result.skipped == {"empty_text": 1}


@pytest.mark.parametrize(("line", "why"), [
    ('{"text": "unterminated', "not valid JSON"),
    ('["a", "list"]', "expected a JSON object"),
    ('{"title": "no text"}', '"text"'),
    ('{"text": 5}', '"text"'),
])
def test_a_malformed_jsonl_line_is_named(tmp_path: Path, line: str, why: str) -> None:
    file = _jsonl(tmp_path / "bad.jsonl", {"text": STORY}, line)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("jsonl", file))
    assert caught.value.code == "bad_jsonl"
    assert "line 2" in caught.value.message and why in caught.value.message


def test_a_binary_file_given_as_jsonl(tmp_path: Path) -> None:
    (tmp_path / "image.jsonl").write_bytes(b"\xff\xd8\xff\xe0" + PNG)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("jsonl", tmp_path / "image.jsonl"))
    assert caught.value.code == "bad_jsonl" and "line 1" in caught.value.message


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n", codecs.BOM_UTF8])
def test_an_empty_jsonl_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "empty.jsonl").write_bytes(content)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("jsonl", tmp_path / "empty.jsonl"))
    assert caught.value.code == "source_empty"


def test_a_missing_jsonl_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("jsonl", tmp_path / "missing.jsonl"))
    assert caught.value.code == "source_not_found" and "missing.jsonl" in caught.value.message


def test_jsonl_limit_and_duplicate_ids(tmp_path: Path) -> None:
    file = _jsonl(tmp_path / "s.jsonl", *({"id": "same", "text": f"{i} {STORY}"} for i in range(2)),
                  *({"text": f"{i} {OTHER}"} for i in range(5)))
    result = load_stories(_spec("jsonl", file), limit=3)
    ids = [s.story_id for s in result.stories]
    assert ids[0] == "same" and all(re.fullmatch(r"jsonl-[0-9a-f]{12}", i) for i in ids[1:])
    assert len(set(ids)) == 3 and result.skipped == {"duplicate": 1}


def test_jsonl_ids_come_from_the_text_so_two_files_do_not_collide(tmp_path: Path) -> None:
    first = load_stories(_spec("jsonl", _jsonl(tmp_path / "a.jsonl", {"text": STORY})))
    second = load_stories(_spec("jsonl", _jsonl(tmp_path / "b.jsonl", {"text": OTHER}, {"text": STORY})))
    assert first.stories[0].story_id != second.stories[0].story_id
    assert first.stories[0].story_id == second.stories[1].story_id  # the same story is the same id


# -- S3 --------------------------------------------------------------------------------------------

@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="writers-bucket")
        yield client


def test_an_s3_prefix_follows_the_folder_rules(s3) -> None:
    objects = {
        "inbox/bom.md": codecs.BOM_UTF8 + ("# Going Up\r\n\r\n" + STORY).encode(),
        "inbox/sub/windows.txt": OTHER.replace(". ", ".\r\n").encode(),
        "inbox/empty.txt": b"",
        "inbox/binary.txt": PNG,
        "inbox/cover.jpg": PNG,
        "inbox/.trash/old.txt": STORY.encode(),
        "elsewhere/not-this.txt": STORY.encode(),
    }
    for key, body in objects.items():
        s3.put_object(Bucket="writers-bucket", Key=key, Body=body)
    result = load_stories(_spec("s3", "s3://writers-bucket/inbox/"), s3_client=s3)
    stories = _by_path(result)
    assert sorted(stories) == ["s3://writers-bucket/inbox/bom.md", "s3://writers-bucket/inbox/sub/windows.txt"]
    going_up = stories["s3://writers-bucket/inbox/bom.md"]
    assert going_up.title == "Going Up" and going_up.text == STORY
    assert re.match(r"^s3-bom-[0-9a-f]{8}$", going_up.story_id) and going_up.source == "s3"
    assert "\r" not in stories["s3://writers-bucket/inbox/sub/windows.txt"].text
    assert result.skipped == {"empty_file": 1} and result.decode_errors == 1
    assert "binary.txt" in result.warnings[0]


@pytest.mark.parametrize(("url", "code"), [
    ("s3://no-such-bucket/stories/", "source_not_found"),
    ("s3://writers-bucket/empty-prefix/", "source_not_found"),
    ("https://writers-bucket/stories", "bad_s3_path"),
])
def test_s3_locations_that_cannot_be_used(s3, url: str, code: str) -> None:
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("s3", url), s3_client=s3)
    assert caught.value.code == code and "\n" not in caught.value.message


def test_an_s3_prefix_without_story_files(s3) -> None:
    s3.put_object(Bucket="writers-bucket", Key="pics/cover.jpg", Body=PNG)
    with pytest.raises(SourceError) as caught:
        load_stories(_spec("s3", "s3://writers-bucket/pics"), s3_client=s3)
    assert caught.value.code == "source_empty"
