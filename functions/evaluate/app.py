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
from coach.domain.records import BuildRequest
from coach.errors import InputError
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
    request = BuildRequest.model_validate(event["request"])
    model = event.get("model") or (event.get("job") or {}).get("fine_tuned_model")
    if not request.evaluation.enabled:
        return {"passed": True, "skipped": True, "model": model, "reasons": [], "report_key": None,
                "summary": "evaluation is disabled for this build (evaluation.enabled is false)", "scores": None}
    if not model:
        raise InputError("nothing to evaluate: the event names no model and no fine-tuned job result",
                         code="nothing_to_evaluate")
    # A Bedrock fine-tune is served by its deployment ARN through Converse; an OpenAI one by its model id.
    backend = (event.get("job") or {}).get("backend")
    candidate = evaluate.parse_model_spec(model, default_provider=event.get("provider") or backend or "openai")
    options = evaluate.options_with_defaults(request.evaluation, runtime.settings())
    report, key = evaluate.evaluate(
        request.build_id, candidate, store=runtime.store(), options=options,
        provider_for=lambda spec: runtime.provider(spec.provider, spec.model), published=_published_model,
        update_manifest=True,
    )
    summary = report.summary(key)
    logger.info("model evaluated", extra={"model": model, "passed": summary.passed, "reasons": summary.reasons,
                                          "pass_rate": summary.pass_rate, "grounding": summary.grounding,
                                          "flaw_lift": summary.flaw_lift, "loop_rate": summary.loop_rate})
    return {"passed": summary.passed, "skipped": False, "model": model, "reasons": summary.reasons,
            "report_key": key, "summary": report.gate.summary, "scores": summary.model_dump(mode="json")}
