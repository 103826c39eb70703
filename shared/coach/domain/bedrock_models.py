"""What Amazon Bedrock can fine-tune and serve, and the limits its customization jobs enforce.

Facts from Bedrock's model customization pages (December 2026), kept in one table so the dataset checks,
the cost estimate, the start of a job and the docs agree. Region matters: a base model is customizable
only in the regions listed, and an on-demand custom model deployment (pay per token, no hourly
commitment) exists only for the Nova models customized after 2025-07-16, in us-east-1 and us-west-2.
Every other base model needs Provisioned Throughput, billed by the hour; the product never buys that
silently, so those models are refused before any money is spent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from coach.domain.records import DEFAULT_BEDROCK_BASE_MODEL, FineTuneOptions

DEFAULT_BEDROCK_REGION = "us-east-1"
# The teacher: Nova Pro is the strongest Nova that answers on demand in-region in us-east-1 without an
# inference profile (so IAM can name one foundation-model ARN) and without a use-case form.
DEFAULT_TEACHER_MODEL = "amazon.nova-pro-v1:0"
# The student: Nova Lite fine-tunes for about a quarter of Pro's training price, serves on demand at
# Lite's token price, and its 300k context holds a 1,500-token story with room to spare.
DEFAULT_BASE_MODEL = DEFAULT_BEDROCK_BASE_MODEL
CONVERSATION_SCHEMA = "bedrock-conversation-2024"


class BaseModelSpec(BaseModel):
    """A customizable base model: where, how it can be served, and its dataset limits."""

    model_config = ConfigDict(frozen=True)

    model_id: str  # the baseModelIdentifier, context variant included
    family: str
    regions: tuple[str, ...]
    on_demand: bool  # servable through an on-demand custom model deployment
    min_records: int = 8
    max_train_records: int = 20_000
    max_validation_records: int = 1_000
    max_record_tokens: int = 32_000
    epochs: tuple[int, int] = (1, 5)
    default_epochs: int = 2
    # AWS's suggestion for warm-up steps: dataset size divided by this, within 0..100.
    warmup_divisor: int = 320


_NOVA_REGIONS = ("us-east-1",)
BASE_MODELS: dict[str, BaseModelSpec] = {spec.model_id: spec for spec in (
    BaseModelSpec(model_id="amazon.nova-micro-v1:0:128k", family="Nova Micro", regions=_NOVA_REGIONS,
                  on_demand=True, warmup_divisor=640),
    BaseModelSpec(model_id="amazon.nova-lite-v1:0:300k", family="Nova Lite", regions=_NOVA_REGIONS,
                  on_demand=True, warmup_divisor=160),
    BaseModelSpec(model_id="amazon.nova-pro-v1:0:300k", family="Nova Pro", regions=_NOVA_REGIONS,
                  on_demand=True, warmup_divisor=320),
    BaseModelSpec(model_id="amazon.nova-2-lite-v1:0:256k", family="Nova 2 Lite", regions=_NOVA_REGIONS,
                  on_demand=False, warmup_divisor=160),
    BaseModelSpec(model_id="meta.llama3-1-8b-instruct-v1:0:128k", family="Llama 3.1 8B Instruct",
                  regions=("us-west-2",), on_demand=False, max_train_records=10_000, max_record_tokens=16_000),
    BaseModelSpec(model_id="meta.llama3-1-70b-instruct-v1:0:128k", family="Llama 3.1 70B Instruct",
                  regions=("us-west-2",), on_demand=False, max_train_records=10_000, max_record_tokens=16_000),
    BaseModelSpec(model_id="anthropic.claude-3-haiku-20240307-v1:0:200k", family="Claude 3 Haiku",
                  regions=("us-west-2",), on_demand=False, max_train_records=10_000, max_record_tokens=32_000),
)}


class UnsupportedBaseModel(ValueError):
    """A base model this product will not fine-tune, with a stable code and the alternatives."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def on_demand_models(region: str | None = None) -> list[str]:
    return [s.model_id for s in BASE_MODELS.values() if s.on_demand and (region is None or region in s.regions)]


def base_model_spec(model_id: str, region: str) -> BaseModelSpec:
    """The spec of a base model that can be fine-tuned in `region` and served on demand; else a coded refusal."""
    spec = BASE_MODELS.get(model_id)
    servable = ", ".join(on_demand_models()) or "none"
    if spec is None:
        raise UnsupportedBaseModel(
            "bedrock_unknown_base_model",
            f"'{model_id}' is not a Bedrock base model this product can fine-tune; use one of: {servable}")
    if region not in spec.regions:
        raise UnsupportedBaseModel(
            "bedrock_base_model_not_in_region",
            f"{spec.family} ({model_id}) can be customized in {', '.join(spec.regions)}, not in {region}: "
            "deploy the stack there or choose another base model")
    if not spec.on_demand:
        raise UnsupportedBaseModel(
            "bedrock_not_on_demand",
            f"a fine-tuned {spec.family} can be served only with Provisioned Throughput (billed by the hour), "
            f"which this product does not buy; base models served on demand: {servable}")
    return spec


def inference_model_id(base_model: str) -> str:
    """The on-demand model id of a base model id ("amazon.nova-lite-v1:0:300k" -> "amazon.nova-lite-v1:0")."""
    head, _, tail = base_model.rpartition(":")
    return head if head and tail.endswith("k") and tail[:-1].isdigit() else base_model


def warmup_steps(spec: BaseModelSpec, records: int) -> int:
    return max(0, min(100, records // spec.warmup_divisor))


def fine_tune_refusal(options: FineTuneOptions, region: str) -> UnsupportedBaseModel | None:
    """Why these fine-tune options cannot run in `region`, checked before any story is paid for; else None."""
    if not options.enabled:
        return None
    if options.backend == "openai":
        if not options.base_model:
            return UnsupportedBaseModel(
                "base_model_required", "the openai fine-tune backend needs fine_tune.base_model (--base-model): "
                "OpenAI has no default, its fine-tunable models shut down on 2027-01-14")
        return None
    try:
        spec = base_model_spec(options.base_model, region)
    except UnsupportedBaseModel as refusal:
        return refusal
    low, high = spec.epochs
    if options.epochs is not None and not low <= options.epochs <= high:
        return UnsupportedBaseModel("bad_epochs", f"{spec.family} trains for {low} to {high} epochs, "
                                                  f"not {options.epochs}")
    return None
