"""The critique API's contract: request, response and error bodies as pydantic models.

The event handler generates the OpenAPI document from these models, so a field added here is
documented there; descriptions are written for the API's users.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from coach.domain.records import ErrorInfo, Usage

MAX_TITLE_CHARS = 300

# C0 controls other than tab, line feed, form feed and carriage return, plus DEL: no story contains
# them, and a body full of them is binary data sent by mistake.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_EXAMPLE_STORY = (
    "The lighthouse keeper counted the ships that did not come back. Forty-one, by her tally, since the "
    "winter her brother left on the Marigold.\n\n\"You'll wear out the glass,\" the inspector said, and "
    "she kept polishing it anyway."
)


def _check_text(value: str, field: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise PydanticCustomError(
            "invalid_text",
            f"{field} contains the control character U+{ord(found.group()):04X} at position {found.start()}: "
            "send plain text",
        )
    return value


class CritiqueRequest(BaseModel):
    """A story to critique."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Keeper", "story": _EXAMPLE_STORY}]},
    )

    story: Annotated[
        StrictStr,
        Field(
            min_length=1,
            pattern=r"\S",
            description=(
                "The story, as plain text (markdown is fine). Paragraphs are separated by blank lines. "
                "Long stories are cut at a paragraph boundary before the editor reads them "
                "(`truncated` says so); stories over the size limit are refused with 413."
            ),
        ),
    ]
    title: Annotated[StrictStr, Field(max_length=MAX_TITLE_CHARS)] | None = Field(
        default=None, description=f"Optional title, at most {MAX_TITLE_CHARS} characters."
    )

    @field_validator("story", mode="before")
    @classmethod
    def _story_not_blank(cls, value: object) -> object:
        # Before the type checks, so a blank story gets its own code instead of a pattern mismatch.
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("empty_story", "story is empty or only whitespace")
        return value

    @field_validator("story")
    @classmethod
    def _story_is_text(cls, value: str) -> str:
        return _check_text(value, "story")

    @field_validator("title")
    @classmethod
    def _title_is_text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value, "title")


class StyleNote(BaseModel):
    """One measured observation about the story, from the offline analysis (no model involved)."""

    code: str = Field(description="Stable identifier of the measurement, e.g. `adverb_dialogue_tags`.")
    message: str = Field(description="What was measured, in a sentence a writer can check.")
    examples: list[str] = Field(default_factory=list, description="Short passages of the story it refers to.")


class CritiqueResponse(BaseModel):
    """An editor's critique of the story, and the measurements that came with it."""

    critique: str = Field(description="The critique: one to three paragraphs addressed to the writer.")
    model: str = Field(description="The model that wrote the critique.")
    prompt_version: str = Field(description="Version of the editor prompt the model was given.")
    truncated: bool = Field(
        description="True when the story was cut at a paragraph boundary before the critique."
    )
    usage: Usage = Field(description="Tokens used, summed over attempts (a rejected draft is retried once).")
    style: list[StyleNote] = Field(description="A few measured notes about the story.")


class ErrorResponse(BaseModel):
    """Every error: a stable `code` to branch on and a one-line `message` that says what to fix."""

    error: ErrorInfo


class HealthResponse(BaseModel):
    status: str = Field(description="`ok` when the service can take requests.")
    version: str = Field(description="Version of the service.")
    warnings: list[str] = Field(default_factory=list, description=(
        "Things an operator should act on while the service still works, e.g. the served model's provider "
        "shuts it down within 60 days."))
