"""Evaluate a fine-tuned model on the build's held-out stories before it is published.

Event (the state machine's task input): {"request": BuildRequest, "job": <fine-tune status result>}, or
{"request": ..., "model": "<model id>"}. Returns {"passed", "model", "summary", "reasons", "report_key",
"scores"}; the state machine publishes on passed and otherwise fails with the summary as the cause. The
summary is also written into the build's manifest, and the full report under builds/{id}/eval/reports/.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import runtime
from coach.adapters.model_registry import ModelRegistry
from coach.pipeline import evaluate

logger = Logger()


def _published_model() -> str | None:
    parameter = runtime.settings().model_parameter
    if not parameter:
        return None
    current = ModelRegistry(runtime.client("ssm"), parameter).current()
    return current.model if current else None


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = evaluate.evaluate_step(event, store=runtime.store(), settings=runtime.settings(),
                                    provider_for=lambda spec: runtime.provider(spec.provider, spec.model),
                                    published=_published_model)
    scores = result["scores"] or {}
    logger.info("model evaluated", extra={"model": result["model"], "passed": result["passed"],
                                          "reasons": result["reasons"], "pass_rate": scores.get("pass_rate"),
                                          "grounding": scores.get("grounding"), "flaw_lift": scores.get("flaw_lift"),
                                          "loop_rate": scores.get("loop_rate")})
    return result
