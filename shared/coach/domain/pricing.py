"""What a completion or a fine-tune costs, in USD, from a table of per-million-token prices.

The defaults are OpenAI's published list prices for a few current models; prices change, so the table can
be replaced or extended with JSON through `COACH_PRICE_TABLE` (a file path or the JSON itself). A model the
table does not know costs 0 and is reported as unpriced, so a report can say "cost unknown" instead of
claiming a free run. The offline critic is free by definition.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coach.domain.critic import OFFLINE_MODEL
from coach.domain.records import Usage
from coach.errors import ConfigError

PRICE_TABLE_ENV = "COACH_PRICE_TABLE"
OFFLINE_PREFIXES = ("offline", "coach-offline")
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
PerMillion = Annotated[float, Field(ge=0)]


class ModelPrice(BaseModel):
    """USD per 1M tokens. The fine-tuned fields apply to `ft:<this model>:...` ids and training."""

    model_config = ConfigDict(extra="forbid")

    input: PerMillion
    output: PerMillion
    cached_input: PerMillion | None = None
    training: PerMillion | None = None
    fine_tuned_input: PerMillion | None = None
    fine_tuned_output: PerMillion | None = None
    # Share taken off the token prices for batch generation (OpenAI's Batch API, Bedrock batch inference);
    # None: the provider offers no known batch price, so a batch is priced like synchronous calls.
    batch_discount: Annotated[float, Field(ge=0, lt=1)] | None = None


class Quote(BaseModel):
    """A priced (or unpriced) usage: `priced=False` means the model is unknown and usd is 0."""

    model: str
    usd: float
    priced: bool
    priced_as: str | None = None  # the table entry used, e.g. "gpt-4o-mini (fine-tuned)"


# OpenAI's Batch API bills half the synchronous price; Bedrock batch inference bills Nova models at half
# the on-demand price.
_HALF = 0.5
# OpenAI list prices, USD per 1M tokens (standard tier, 2025).
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input=2.50, cached_input=1.25, output=10.00, training=25.00,
                         fine_tuned_input=3.75, fine_tuned_output=15.00, batch_discount=_HALF),
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60, training=3.00,
                              fine_tuned_input=0.30, fine_tuned_output=1.20, batch_discount=_HALF),
    "gpt-4.1": ModelPrice(input=2.00, cached_input=0.50, output=8.00, training=25.00,
                          fine_tuned_input=3.00, fine_tuned_output=12.00, batch_discount=_HALF),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60, training=5.00,
                               fine_tuned_input=0.80, fine_tuned_output=3.20, batch_discount=_HALF),
    "gpt-4.1-nano": ModelPrice(input=0.10, cached_input=0.025, output=0.40, training=1.50,
                               fine_tuned_input=0.20, fine_tuned_output=0.80, batch_discount=_HALF),
    # Amazon Bedrock on-demand list prices in us-east-1 (2025). A fine-tuned Nova served through an on-demand
    # deployment bills its base model's token price; training bills tokens x epochs (plus $1.95 a month
    # of model storage, not counted here).
    "amazon.nova-micro-v1:0": ModelPrice(input=0.035, output=0.14, training=1.00,
                                         fine_tuned_input=0.035, fine_tuned_output=0.14, batch_discount=_HALF),
    "amazon.nova-lite-v1:0": ModelPrice(input=0.06, output=0.24, training=2.00,
                                        fine_tuned_input=0.06, fine_tuned_output=0.24, batch_discount=_HALF),
    "amazon.nova-pro-v1:0": ModelPrice(input=0.80, output=3.20, training=8.00,
                                       fine_tuned_input=0.80, fine_tuned_output=3.20, batch_discount=_HALF),
    "amazon.nova-premier-v1:0": ModelPrice(input=2.50, output=12.50, batch_discount=_HALF),
    "amazon.nova-2-lite-v1:0": ModelPrice(input=0.30, output=2.50, batch_discount=_HALF),
}
# Cross-region inference profiles ("us.amazon.nova-pro-v1:0") bill as the model they route to.
_INFERENCE_PROFILE = re.compile(r"^(?:us|eu|apac|jp|au|ca|global)\.")
# Customization base ids carry their context window ("amazon.nova-lite-v1:0:300k").
_CONTEXT_SUFFIX = re.compile(r":\d+k$")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    free_models: set[str] = Field(default_factory=set)

    def is_free(self, model: str) -> bool:
        return model in self.free_models or model.lower().startswith(OFFLINE_PREFIXES)

    def lookup(self, model: str) -> tuple[str, ModelPrice, bool] | None:
        """(table key, price, fine-tuned?) for a model id, or None when the table does not know it.

        Tried in order: the exact id, the id without its date snapshot ("gpt-4o-mini-2024-07-18"), and for
        a fine-tuned id ("ft:<base>:<org>:<suffix>:<id>", checkpoints included) its base model.
        """
        fine_tuned = model.startswith("ft:")
        name = model.split(":")[1] if fine_tuned and model.count(":") >= 1 else model
        bedrock = _CONTEXT_SUFFIX.sub("", _INFERENCE_PROFILE.sub("", name))
        for candidate in (name, _DATE_SUFFIX.sub("", name), bedrock):
            if candidate in self.models:
                return candidate, self.models[candidate], fine_tuned
        return None

    def quote(self, model: str, usage: Usage, *, batch: bool = False) -> Quote:
        """The price of `usage`; `batch=True` applies the model's batch discount when it has one."""
        if self.is_free(model):
            return Quote(model=model, usd=0.0, priced=True, priced_as="offline")
        found = self.lookup(model)
        if found is None:
            return Quote(model=model, usd=0.0, priced=False)
        key, price, fine_tuned = found
        # A fine-tuned model bills at its base's fine-tuned rate; when that is unknown, the base rate.
        rate_in = price.fine_tuned_input if fine_tuned and price.fine_tuned_input is not None else price.input
        rate_out = price.fine_tuned_output if fine_tuned and price.fine_tuned_output is not None else price.output
        usd = (usage.prompt_tokens * rate_in + usage.completion_tokens * rate_out) / 1_000_000
        label = f"{key} (fine-tuned)" if fine_tuned else key
        if batch and price.batch_discount is not None:
            usd *= 1 - price.batch_discount
            label += " (batch)"
        return Quote(model=model, usd=round(usd, 8), priced=True, priced_as=label)

    def cost_usd(self, model: str, usage: Usage, *, batch: bool = False) -> float:
        return self.quote(model, usage, batch=batch).usd

    def is_priced(self, model: str) -> bool:
        return self.is_free(model) or self.lookup(model) is not None

    def training_price(self, base_model: str) -> float | None:
        """USD per 1M training tokens for fine-tuning `base_model`; None when the table does not know it."""
        found = self.lookup(base_model)
        return None if found is None or found[1].training is None else float(found[1].training)

    def merged(self, overrides: dict[str, ModelPrice]) -> PriceTable:
        return PriceTable(models={**self.models, **overrides}, free_models=set(self.free_models))


def parse_price_json(text: str, *, origin: str = PRICE_TABLE_ENV) -> dict[str, ModelPrice]:
    """Model prices from JSON: `{"models": {id: price}}` or a bare `{id: price}` mapping."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{origin} is not valid JSON: {err.msg} at line {err.lineno}",
                          code="bad_price_table") from None
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        data = data["models"]
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must be a JSON object of model -> prices", code="bad_price_table")
    prices: dict[str, ModelPrice] = {}
    for model, entry in data.items():
        try:
            prices[str(model)] = ModelPrice.model_validate(entry)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise ConfigError(
                f"{origin}: price for '{model}' is invalid ({where}: {first['msg']}); expected numbers "
                "per 1M tokens such as {\"input\": 0.15, \"output\": 0.6}",
                code="bad_price_table",
            ) from None
    return prices


def load_price_table(setting: str | None = None) -> PriceTable:
    """The default table, extended or overridden by `setting` (inline JSON or a path to a JSON file)."""
    table = PriceTable(free_models=_offline_models())
    setting = (setting or "").strip()
    if not setting:
        return table
    if setting.startswith("{"):
        return table.merged(parse_price_json(setting))
    path = Path(setting).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{PRICE_TABLE_ENV} file '{setting}' cannot be read: {err.strerror}",
                          code="bad_price_table") from None
    return table.merged(parse_price_json(text, origin=str(path)))


@functools.cache
def _table_for(setting: str) -> PriceTable:
    return load_price_table(setting)


def price_table(setting: str | None = None) -> PriceTable:
    """The table in effect: the defaults with `setting` applied; None takes the deployment's COACH_PRICE_TABLE
    (read again when it changes). Each distinct setting is parsed once."""
    if setting is None:
        from coach.settings import price_table_setting  # the environment is read there, not here

        setting = price_table_setting()
    return _table_for(setting)


def cost_usd(model: str, usage: Usage, *, batch: bool = False) -> float:
    return price_table().cost_usd(model, usage, batch=batch)


def quote(model: str, usage: Usage, *, batch: bool = False) -> Quote:
    return price_table().quote(model, usage, batch=batch)


def _offline_models() -> set[str]:
    return {OFFLINE_MODEL}
