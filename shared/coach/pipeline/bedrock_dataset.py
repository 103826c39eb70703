"""The Bedrock copy of a build's dataset: the same examples in `bedrock-conversation-2024`, checked.

Written beside train.jsonl / validation.jsonl when the fine-tune backend is Bedrock. The records are
converted from the chat examples (whose system and user messages are what the API sends a fine-tuned
model), so both formats hold the same conversations, line for line.
"""

from __future__ import annotations

from coach.adapters.storage import BuildStore, dataset_key
from coach.domain.bedrock_models import BaseModelSpec, base_model_spec
from coach.domain.conversation_format import chat_jsonl_to_conversation, check_conversation_jsonl
from coach.domain.finetune_data import CheckResult
from coach.domain.tokens import TokenCounter

TRAIN_FILE = "train.bedrock.jsonl"
VALIDATION_FILE = "validation.bedrock.jsonl"


def check_bedrock_files(train_text: str, validation_text: str, spec: BaseModelSpec,
                        counter: TokenCounter) -> dict[str, tuple[str, CheckResult]]:
    """{file name: (conversation-format text, its check)} for the chat-format train and validation texts."""
    files = {TRAIN_FILE: (chat_jsonl_to_conversation(train_text), False)}
    if validation_text.strip():
        files[VALIDATION_FILE] = (chat_jsonl_to_conversation(validation_text), True)
    return {name: (text, check_conversation_jsonl(text, spec, counter, name=name, validation=is_validation))
            for name, (text, is_validation) in files.items()}


def write_bedrock_files(store: BuildStore, build_id: str, checked: dict[str, tuple[str, CheckResult]]) -> dict[
        str, str]:
    """Store checked files under the build's dataset prefix; {file name: key}."""
    keys = {}
    for name, (text, _) in checked.items():
        keys[name] = dataset_key(build_id, name)
        store.put_text(keys[name], text, "application/x-ndjson")
    return keys


def spec_for(base_model: str, region: str) -> BaseModelSpec:
    return base_model_spec(base_model, region)
