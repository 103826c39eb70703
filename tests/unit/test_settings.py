"""Deployment settings: read from the environment in one place, checked once, a bad value one coded line."""

from __future__ import annotations

import pytest

from coach.adapters.storage import feedback_key, index_key, index_prefix, records_prefix, story_key, verdict_key
from coach.domain.finetune_data import example_tokens
from coach.domain.pricing import price_table
from coach.domain.tokens import chat_tokens, get_counter
from coach.errors import ConfigError
from coach.settings import Settings, estimate_tokens_only, price_table_setting


def test_defaults_and_names(monkeypatch):
    for name in ("COACH_MAX_STORY_TOKENS", "COACH_COMPLETION_TIMEOUT", "COACH_PROVIDER", "COACH_TOKENIZER"):
        monkeypatch.delenv(name, raising=False)
    cfg = Settings.from_env()
    assert (cfg.max_story_tokens, cfg.max_feedback_tokens, cfg.completion_timeout) == (1_500, 800, 60.0)
    assert cfg.provider == "offline" and cfg.tokenizer == "tiktoken"
    monkeypatch.setenv("COACH_MAX_STORY_TOKENS", "900")
    monkeypatch.setenv("COACH_TOKENIZER", "Estimate")
    monkeypatch.setenv("COACH_PROVIDER", "")  # blank is unset
    cfg = Settings.from_env()
    assert cfg.max_story_tokens == 900 and cfg.provider == "offline" and estimate_tokens_only()
    assert Settings.from_env() is cfg  # parsed once per environment


def test_a_bad_value_is_one_coded_line(monkeypatch):
    monkeypatch.setenv("COACH_HTTP_POOL", "many")
    with pytest.raises(ConfigError) as bad:
        Settings.from_env()
    assert bad.value.code == "bad_setting" and "\n" not in bad.value.message
    assert bad.value.message.startswith("COACH_HTTP_POOL='many' is not valid")
    monkeypatch.setenv("COACH_HTTP_POOL", "4")
    monkeypatch.setenv("COACH_DEDUPE_SIMILARITY", "1.5")
    with pytest.raises(ConfigError, match="COACH_DEDUPE_SIMILARITY"):
        Settings.from_env()


def test_a_secret_is_never_echoed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    assert "sk-secret" not in repr(Settings.from_env())


def test_require_names_the_variables(monkeypatch):
    monkeypatch.delenv("COACH_STORY_QUEUE_URL", raising=False)
    with pytest.raises(ConfigError, match="set COACH_STORY_QUEUE_URL") as missing:
        Settings.from_env().require("story_queue_url")
    assert missing.value.code == "missing_configuration"


def test_price_table_follows_the_setting_or_takes_one(monkeypatch):
    monkeypatch.setenv("COACH_PRICE_TABLE", '{"my-llama": {"input": 1, "output": 2}}')
    assert price_table_setting().startswith("{")
    assert price_table().lookup("my-llama") is not None
    assert price_table("").lookup("my-llama") is None  # a value passed in wins over the environment


def test_one_chat_token_count_for_prompts_and_examples():
    counter = get_counter(estimate=True)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A story."},
                {"role": "assistant", "content": "Some feedback.", "name": "editor"}]
    total, assistant = example_tokens(messages, counter)
    assert total == chat_tokens(messages, counter)
    assert assistant == counter.count("Some feedback.")


def test_storage_prefixes_hold_their_keys():
    assert story_key("b1", "s1") == records_prefix("b1", "stories") + "s1.json" == "builds/b1/stories/s1.json"
    assert feedback_key("b1", "s1").startswith(records_prefix("b1", "feedback"))
    assert verdict_key("b1", "s1").startswith(records_prefix("b1", "verdicts"))
    assert index_key("s1") == index_prefix() + "s1"
