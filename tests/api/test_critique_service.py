"""The critique service without HTTP: what it sends to the provider and how it judges what comes back."""

from __future__ import annotations

from typing import Any

import pytest

from coach.adapters.completion import Completion
from coach.api.config import ApiConfig
from coach.api.errors import ApiError
from coach.api.model_choice import ModelChoice
from coach.api.models import CritiqueRequest
from coach.api.service import CritiqueService
from coach.domain.prompt import COMPACT_PROMPT_VERSION, END_MARKER, SYSTEM_COMPACT, build_messages
from coach.domain.records import Usage
from tests.api.api_support import STORY
from tests.fakes.openai_server import default_critique

GOOD = default_critique([{"role": "user", "content": STORY}])


class ScriptedProvider:
    model = "scripted-model"

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def complete(self, messages, *, max_tokens=800, stop=None, temperature=0.7) -> Completion:
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "stop": stop})
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return Completion(text=reply, finish_reason="stop", model=self.model, latency_ms=1,
                          usage=Usage(prompt_tokens=100, completion_tokens=50, total_tokens=150))


class FixedChoice:
    def __init__(self, choice: ModelChoice) -> None:
        self.choice = choice

    def current(self) -> ModelChoice:
        return self.choice


BASE = ModelChoice(provider="openai", model="base-model", layout="full", source="configured")


def service_with(provider: ScriptedProvider, *, choice: ModelChoice = BASE, **config: Any) -> CritiqueService:
    return CritiqueService(ApiConfig(**config), provider_factory=lambda cfg, c: provider,
                           selector=FixedChoice(choice))  # type: ignore[arg-type]


def test_the_provider_gets_the_stop_sequence_and_the_token_limit():
    provider = ScriptedProvider(GOOD)
    service_with(provider, max_feedback_tokens=640).critique(CritiqueRequest(story=STORY))
    [call] = provider.calls
    assert call["stop"] == [END_MARKER]
    assert call["max_tokens"] == 640


def test_a_published_model_gets_exactly_the_training_layout():
    provider = ScriptedProvider(GOOD)
    tuned = ModelChoice(provider="openai", model="ft:x", layout="compact", source="published")
    response = service_with(provider, choice=tuned).critique(CritiqueRequest(story=STORY, title="Keeper"))
    assert provider.calls[0]["messages"] == build_messages(STORY, "Keeper", layout="compact").messages
    assert provider.calls[0]["messages"][0]["content"] == SYSTEM_COMPACT
    assert response.prompt_version == COMPACT_PROMPT_VERSION


def test_usage_is_summed_over_the_retry():
    provider = ScriptedProvider("1. a list\n2. of points\n3. not a critique", GOOD)
    response = service_with(provider).critique(CritiqueRequest(story=STORY))
    assert response.usage.total_tokens == 300
    assert len(provider.calls) == 2


def test_the_story_limit_is_checked_before_any_provider_call():
    provider = ScriptedProvider(GOOD)
    with pytest.raises(ApiError) as caught:
        service_with(provider, max_story_chars=100).critique(CritiqueRequest(story=STORY))
    assert (caught.value.status, caught.value.code) == (413, "story_too_large")
    assert provider.calls == []


def test_style_notes_are_capped():
    provider = ScriptedProvider(GOOD, GOOD)
    many = service_with(provider).critique(CritiqueRequest(story=STORY * 3))
    assert len(many.style) <= 5
    none = service_with(provider, max_style_notes=0).critique(CritiqueRequest(story=STORY))
    assert none.style == []
