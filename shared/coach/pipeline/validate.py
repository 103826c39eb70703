"""Judging a critique where it already is: the generator judges each critique it writes, and the shard stage
(coach.pipeline.shard) reuses that verdict unless something it depends on has changed since.

A verdict depends on the raw critique, its finish reason, the story and the validator's rules. Its `basis`
is a digest of all four (the rules by the source of coach.domain.validation, so editing a rule invalidates
every stored verdict without anyone remembering to bump a version).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from coach.adapters.storage import BuildStore, verdict_key
from coach.domain.records import GenerationRecord, Story, Verdict
from coach.domain.validation import validate_feedback


@functools.cache
def rules_fingerprint() -> str:
    import coach.domain.validation as validation

    digest = hashlib.sha256()
    for path in sorted(Path(validation.__file__).parent.glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def verdict_basis(record: GenerationRecord, story: Story | None) -> str:
    digest = hashlib.sha256()
    for part in (rules_fingerprint(), record.feedback or "", record.finish_reason or "", story.text if story else ""):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:24]


def judge(record: GenerationRecord, story: Story | None) -> Verdict:
    verdict = validate_feedback(record.feedback or "", story=story.text if story else "", story_id=record.story_id,
                                finish_reason=record.finish_reason)
    verdict.basis = verdict_basis(record, story)
    return verdict


def judge_and_store(store: BuildStore, record: GenerationRecord, story: Story | None) -> Verdict:
    verdict = judge(record, story)
    store.put_verdict(record.build_id, verdict)
    return verdict


def current_verdict(store: BuildStore, record: GenerationRecord, story: Story | None) -> tuple[Verdict, bool]:
    """(the verdict of this critique, whether it was judged now): a stored one is reused only if its basis holds."""
    stored = store.get_model(verdict_key(record.build_id, record.story_id), Verdict)
    if stored is not None and stored.basis and stored.basis == verdict_basis(record, story):
        return stored, False
    return judge_and_store(store, record, story), True
