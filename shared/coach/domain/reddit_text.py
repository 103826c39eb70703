"""Reddit text to plain story text, and the tests that tell a story reply from noise.

Pure functions, no I/O. A reply's `body` is Reddit-flavoured markdown; a story record holds plain
paragraphs, the way a reader sees the rendered reply: emphasis, links, spoilers and headings lose their
markup but keep their words, paragraphs stay apart, and a horizontal rule (a writer's scene break) becomes
"* * *". Markdown files from a writer's own folder go through the same conversion.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

SCENE_BREAK = "* * *"

# A backslash escapes any ASCII punctuation (CommonMark, which Reddit follows). Escaped characters are
# parked in the private-use area while the markup is removed, so "\*not emphasis\*" keeps its asterisks.
_ESCAPABLE = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_PARK_BASE = 0xE000
_ESCAPE = re.compile(r"\\([" + re.escape(_ESCAPABLE) + r"])")

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}=+[ \t]*$")
# Reddit also renders "#**TITLE**" and "#TITLE" (no space) as headings, as a reader sees them; "#1" stays text.
_ATX = re.compile(r"^\s{0,3}#{1,6}(?:[ \t]+|(?=[^\s\d#]))(.*?)(?:[ \t]+#+)?[ \t]*$")
_QUOTE = re.compile(r"^\s{0,3}>(?!!)[ \t]?")
_BULLET = re.compile(r"^\s*[*+-][ \t]+(?=\S)")
_NUMBERED = re.compile(r"^\s*\d{1,9}[.)][ \t]+(?=\S)")
_REF_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")

# Link text may hold bracket pairs itself ("[[WP] The sea comes home](url)", "[Part 2 [FINAL]](url)").
_LINK_TEXT = r"((?:[^\[\]]|\[[^\[\]]*\])+)"
_LINK_TARGET = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)"
_IMAGE = re.compile(r"!\[([^\]]*)\]" + _LINK_TARGET)
_LINK = re.compile(r"\[" + _LINK_TEXT + r"\]" + _LINK_TARGET)
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+|[^>\s@]+@[^>\s@]+)>")
_SPOILER = re.compile(r">!(.+?)!<")
_SUPERSCRIPT_GROUP = re.compile(r"\^\(([^)]*)\)")
_SUPERSCRIPT_WORD = re.compile(r"\^(?=\S)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_CODE = re.compile(r"`+([^`]+?)`+")
_STRONG_EM_STAR = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_STRONG_STAR = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM_STAR = re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*")
# Underscores only mark emphasis at word edges, so snake_case and file_names stay whole.
_STRONG_EM_UNDER = re.compile(r"(?<![\w])___(?=\S)(.+?)(?<=\S)___(?![\w])")
_STRONG_UNDER = re.compile(r"(?<![\w])__(?=\S)(.+?)(?<=\S)__(?![\w])")
_EM_UNDER = re.compile(r"(?<![\w])_(?=\S)(.+?)(?<=\S)_(?![\w])")

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"[ \t\u00a0\u2007\u202f]+")
_BLANK_RUN = re.compile(r"\n{3,}")

# Bots announce themselves in a footer. A story narrated by a robot may say "I am a bot" too, so the phrase
# counts only in the last paragraph and not as quoted speech.
_BOT_FOOTER = re.compile(
    r"(?<![\"“‘'\w])(?:i\s*(?:am|'m|’m)\s+a\s+(?:ro)?bot\b|this action was performed automatically|"
    r"beep,? boop\b|bleep,? bloop\b)",
    re.IGNORECASE,
)
_FOOTER_SPAN = 600
KNOWN_BOTS = frozenset({
    "automoderator", "writingpromptsrobot", "remindmebot", "wikitextbot", "wikisummarizerbot",
    "sneakpeekbot", "totesmessenger", "repostsleuthbot", "savevideo", "converter-bot", "timezone_bot",
    "b0trank", "goodbot_badbot", "the-paranoid-android", "profanitycounter", "stormtrooper_bot",
    "haikusbot", "nice-scores", "same_post_bot", "substitute-bot", "ttumblrbots",
})
_BOT_NAME = re.compile(r"(?:^|[-_])bot$|robot$", re.IGNORECASE)
_CAMEL_BOT = re.compile(r"[a-z0-9]Bot$")
_DELETED = re.compile(r"^\[\s*(?:deleted|removed)\b[^\]]*\]$", re.IGNORECASE)
_PROMPT_TAGS = re.compile(r"^\s*(?:[\[(][A-Za-z]{2,3}[\])]\s*)+")


def _park_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(_PARK_BASE + ord(m.group(1))), text)


def _unpark(text: str) -> str:
    return "".join(
        chr(ord(ch) - _PARK_BASE) if _PARK_BASE <= ord(ch) < _PARK_BASE + 128 else ch for ch in text
    )


def _inline(line: str) -> str:
    """Remove inline markup from one line, keeping the words."""
    line = _CODE.sub(lambda m: _park_all(m.group(1)), line)
    line = _IMAGE.sub(r"\1", line)
    # The brackets a link's text shows are text: parked, so the reference-link pass cannot take them.
    line = _LINK.sub(lambda m: _park_brackets(m.group(1)), line)
    line = _REF_LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _SPOILER.sub(r"\1", line)
    line = _SUPERSCRIPT_GROUP.sub(r"\1", line)
    line = _SUPERSCRIPT_WORD.sub("", line)
    line = _STRIKE.sub(r"\1", line)
    for pattern in (_STRONG_EM_STAR, _STRONG_EM_UNDER, _STRONG_STAR, _STRONG_UNDER, _EM_STAR, _EM_UNDER):
        line = pattern.sub(r"\1", line)
    return line


def _park_brackets(text: str) -> str:
    return text.replace("[", chr(_PARK_BASE + ord("["))).replace("]", chr(_PARK_BASE + ord("]")))


def _park_all(text: str) -> str:
    """Code spans are literal: park their markdown characters so later passes leave them alone."""
    return "".join(chr(_PARK_BASE + ord(ch)) if ch in _ESCAPABLE else ch for ch in text)


def _finish(line: str) -> str:
    line = html.unescape(_unpark(line)).translate(_INVISIBLE)
    return _SPACES.sub(" ", line).strip()


class _Paragraphs:
    """The paragraphs of a reply as a reader sees them rendered, each a list of its own lines."""

    def __init__(self) -> None:
        self.done: list[list[str]] = []
        self.current: list[str] = []
        self.hard_break = True  # the next line starts a new line rather than continuing the last one
        self.in_fence = False

    def close(self) -> None:
        if self.current:
            self.done.append(self.current)
        self.current = []
        self.hard_break = True

    def add(self, line: str, *, own_line: bool, breaks_after: bool) -> None:
        if self.current and not (self.hard_break or own_line):
            self.current[-1] = f"{self.current[-1]} {line}"
        else:
            self.current.append(line)
        self.hard_break = breaks_after or own_line

    def add_block(self, line: str) -> None:
        """A paragraph of one line (a scene break, a heading), apart from the text around it."""
        self.close()
        self.done.append([line])


def _fenced_line(paragraphs: _Paragraphs, raw: str) -> bool:
    """A code fence or a line inside one (kept literally, on its own line); False for any other line."""
    if _FENCE.match(raw):
        paragraphs.in_fence = not paragraphs.in_fence
        paragraphs.close()
        return True
    if paragraphs.in_fence and raw.strip():
        paragraphs.add(_park_all(raw.strip()), own_line=True, breaks_after=True)
    return paragraphs.in_fence


def _without_hard_break(raw: str) -> tuple[str, bool]:
    """The line without trailing spaces or a hard-break backslash, and whether it ended in a hard break."""
    ends_hard = raw.endswith(("  ", "\\")) and raw.strip() not in ("", "\\")
    line = raw.rstrip()
    if ends_hard and line.endswith("\\"):
        line = line[:-1].rstrip()
    return line, ends_hard


# Lines that are not text of a paragraph. Each takes a line and returns True when it dealt with it;
# they are tried in this order.

def _blank_line(paragraphs: _Paragraphs, line: str) -> bool:
    # Blank, or only entities such as &nbsp; / &#x200B; that writers use as spacer lines.
    if line.strip() and _finish(line):
        return False
    paragraphs.close()
    return True


def _scene_break(paragraphs: _Paragraphs, line: str) -> bool:
    # Also "text\n---", which markdown would call a heading: writers mean a scene break.
    if not _RULE.match(line):
        return False
    paragraphs.add_block(SCENE_BREAK)
    return True


def _setext_underline(paragraphs: _Paragraphs, line: str) -> bool:
    if not (_SETEXT_UNDERLINE.match(line) and paragraphs.current):
        return False
    paragraphs.close()  # "Title\n=====": the line above was a heading
    return True


def _invisible_line(paragraphs: _Paragraphs, line: str) -> bool:
    """A reference-link definition or a table's rule: a reader does not see either."""
    return bool(_REF_DEFINITION.match(line) or (_TABLE_RULE.match(line) and "|" in line))


def _atx_heading(paragraphs: _Paragraphs, line: str) -> bool:
    heading = _ATX.match(line)
    if not heading:
        return False
    if heading.group(1).strip():
        paragraphs.add_block(heading.group(1))
    else:
        paragraphs.close()
    return True


_NON_TEXT_LINES: tuple[Callable[[_Paragraphs, str], bool], ...] = (
    _blank_line, _scene_break, _setext_underline, _invisible_line, _atx_heading,
)


def _unquoted(line: str) -> tuple[str, bool]:
    """The line without its quote markers (">", "> >"), and whether it had any."""
    quoted = False
    while _QUOTE.match(line):
        line = _QUOTE.sub("", line, count=1)
        quoted = True
    return line, quoted


def _list_item(line: str) -> tuple[str, bool]:
    """The line without a bullet (a number stays), and whether it is a list item, which keeps its own line."""
    if _BULLET.match(line):
        return _BULLET.sub("", line, count=1), True
    return line, bool(_NUMBERED.match(line))


def _text_line(paragraphs: _Paragraphs, line: str, *, ends_hard: bool) -> None:
    line, quoted = _unquoted(line)
    if quoted and not line.strip():
        paragraphs.close()
        return
    line, own_line = _list_item(line)
    paragraphs.add(line.strip(), own_line=own_line, breaks_after=ends_hard or own_line)


def _read_line(paragraphs: _Paragraphs, raw: str) -> None:
    if _fenced_line(paragraphs, raw):
        return
    line, ends_hard = _without_hard_break(raw)
    if not any(handle(paragraphs, line) for handle in _NON_TEXT_LINES):
        _text_line(paragraphs, line, ends_hard=ends_hard)


def _plain_paragraphs(paragraphs: list[list[str]]) -> list[str]:
    """Each paragraph's lines without inline markup, joined; paragraphs left empty are dropped."""
    out: list[str] = []
    for para in paragraphs:
        lines = [_finish(_inline(_park_escapes(line))) for line in para]
        body = "\n".join(line for line in lines if line)
        if body:
            out.append(body)
    return out


def markdown_to_plain(markdown: str) -> str:
    """Reddit markdown (raw or entity-escaped) to plain paragraphs separated by one blank line.

    Within a paragraph, lines the writer merely wrapped are joined with a space (that is how Reddit
    renders them); hard breaks (two trailing spaces or a backslash), list items and quoted lines keep
    their own line.
    """
    paragraphs = _Paragraphs()
    for raw in normalise_newlines(markdown).split("\n"):
        _read_line(paragraphs, raw)
    paragraphs.close()
    return _collapse_scene_breaks(_plain_paragraphs(paragraphs.done))


def _collapse_scene_breaks(paragraphs: list[str]) -> str:
    kept: list[str] = []
    for para in paragraphs:
        if para == SCENE_BREAK and (not kept or kept[-1] == SCENE_BREAK):
            continue
        kept.append(para)
    while kept and kept[-1] == SCENE_BREAK:
        kept.pop()
    return "\n\n".join(kept)


def normalise_newlines(text: str) -> str:
    """Strip a byte-order mark and turn Windows (CRLF) and old Mac (CR) line endings into LF."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def clean_plain_text(text: str) -> str:
    """Plain text as written, tidied: LF endings, no trailing spaces, at most one blank line in a row."""
    lines = [line.rstrip() for line in normalise_newlines(text).split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n").rstrip()


def decode_entities(text: str) -> str:
    """HTML entities (&amp;, &#x200B;, &nbsp;) to the characters they stand for; invisible ones removed."""
    return html.unescape(text).translate(_INVISIBLE).replace("\u00a0", " ")


def is_deleted(body: str | None) -> bool:
    """A body Reddit put in place of a deleted or removed reply ("[deleted]", "[ Removed by Reddit ]")."""
    return body is None or not body.strip() or bool(_DELETED.match(body.strip()))


def is_bot_name(author: str | None) -> bool:
    if not author:
        return False
    return author.lower() in KNOWN_BOTS or bool(_BOT_NAME.search(author) or _CAMEL_BOT.search(author))


def has_bot_footer(text: str) -> bool:
    """True when the reply signs off as a bot ("I am a bot", "this action was performed automatically")."""
    last_paragraph = re.split(r"\n\s*\n", decode_entities(text).strip())[-1]
    return bool(_BOT_FOOTER.search(last_paragraph[-_FOOTER_SPAN:]))


def is_bot(author: str | None, body: str) -> bool:
    return is_bot_name(author) or has_bot_footer(body)


def prompt_title(post_title: str) -> str:
    """A prompt's title without its leading tags: "[WP] [TT] The sea is gone" -> "The sea is gone"."""
    title = _SPACES.sub(" ", decode_entities(post_title)).strip()
    return _PROMPT_TAGS.sub("", title).strip() or title
