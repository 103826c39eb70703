"""Whitespace normalisation shared by the prompt and the validator, so both see the same text."""

from __future__ import annotations

import re

_BLANK_RUN = re.compile(r"\n{3,}")


def normalise_whitespace(text: str) -> str:
    """LF line endings, no BOM, no trailing spaces, at most one blank line in a row, no outer blank space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()
