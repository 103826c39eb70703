"""Repetition loops: a model that repeats its last sentence (or phrase) until the token limit.

`find_tail_loop` finds a unit repeated at the very end; `trim_repetition_loop` cuts the text back to the
unit's first occurrence, which the critique API applies to a fine-tuned model's output before judging it.
"""

from __future__ import annotations

import re

from coach.domain.validation.config import DEFAULT_CONFIG, ValidatorConfig

_TOKEN_RE = re.compile(r"\S+")
_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)\]*]*$")
_PUNCT_STRIP = "\"'“”‘’()[]*_.,;:!?…-–—"


def _best_period(keys: list[str], config: ValidatorConfig) -> tuple[int, int] | None:
    """(tokens covered, period) of the longest unit repeated enough times at the end of keys."""
    n = len(keys)
    best: tuple[int, int] | None = None
    for p in range(1, min(config.loop_max_period, n // 2) + 1):
        if keys[n - 1] != keys[n - 1 - p]:
            continue
        j = n - 1
        while j - p >= 0 and keys[j] == keys[j - p]:
            j -= 1
        covered = (n - 1 - j) + p
        needed = config.loop_min_repeats_long if p >= config.loop_long_unit else config.loop_min_repeats_short
        if covered // p >= needed and (best is None or covered > best[0]):
            best = (covered, p)
    return best


def _loop_key(token: str) -> str:
    return token.lower().strip(_PUNCT_STRIP)


def find_tail_loop(text: str, config: ValidatorConfig) -> tuple[int, int, int] | None:
    """(keep_until, loop_start, repeats) for a unit repeated at the end of the text, or None."""
    # Any loop the rule accepts shows within the last 2 * loop_max_period tokens: look there first.
    window = text.rsplit(maxsplit=2 * config.loop_max_period + 2)
    if len(window) > 2 * config.loop_max_period + 2:
        window = window[1:]
    if _best_period([_loop_key(t) for t in window], config) is None:
        return None
    tokens = list(_TOKEN_RE.finditer(text))
    best = _best_period([_loop_key(t.group()) for t in tokens], config)
    if best is None:
        return None
    n = len(tokens)
    covered, p = best
    start = n - covered
    cut = start + p - 1
    # Keep whole sentences: end the kept text at the first sentence end inside the second occurrence.
    for k in range(cut, min(start + 2 * p, n)):
        if _SENTENCE_END_RE.search(tokens[k].group()):
            cut = k
            break
    if cut >= n - 1:
        return None
    return tokens[cut].end(), tokens[start].start(), covered // p


def trim_repetition_loop(text: str, config: ValidatorConfig | None = None) -> tuple[str, bool]:
    """Cut a trailing repetition loop back to its first occurrence; (text, whether anything was cut)."""
    loop = find_tail_loop(text, config or DEFAULT_CONFIG)
    if loop is None:
        return text, False
    return text[:loop[0]].rstrip(), True
