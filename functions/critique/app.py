"""POST /critiques -> an editor's critique of the story; GET /health; GET /swagger (the OpenAPI contract)."""

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from coach import __version__
from coach.api import config, errors, gate, service
from coach.api.models import CritiqueRequest, CritiqueResponse, HealthResponse
from coach.api.openapi import CritiqueApiResolver
from coach.observability import count

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Every body parser failure must surface as a 400 (see errors.parse_json_body).
app = CritiqueApiResolver(enable_validation=True, json_body_deserializer=errors.parse_json_body)
app.enable_swagger(
    path="/swagger",
    title="Creative Writing Coach: critique API",
    version=__version__,
    description="Send a short story, get a professional editor's critique of its craft, with measured "
    "style notes.",
    security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
)
ALLOWED_METHODS = {"/critiques": ("POST",), "/health": ("GET",), "/swagger": ("GET",)}
errors.install(app, ALLOWED_METHODS)


@app.post(
    "/critiques",
    summary="Critique a story",
    description="Returns an editor's critique (second person, paragraphs, praise then improvement then "
    "praise) that has passed the house standard, with the model used and a few measured style notes.",
    operation_id="createCritique",
    tags=["critiques"],
    security=[{"apiKey": []}],
    response_description="The critique",
    responses={200: {"description": "The critique",
                     "content": {"application/json": {"model": CritiqueResponse}}},
               **errors.documented(400, 401, 403, 405, 413, 415, 429, 500, 502, 503)},
)
@tracer.capture_method(capture_response=False)  # critiques quote the writer's story: keep them out of traces
def create_critique(request: Annotated[CritiqueRequest, Body(embed=False)]) -> CritiqueResponse:
    response = service.current().critique(request)
    count(metrics, "CritiquesServed")
    count(metrics, "CritiqueTokens", response.usage.total_tokens)
    if response.truncated:
        count(metrics, "CritiqueStoriesTruncated")
    return response


@app.get("/health", summary="Liveness check", operation_id="health", tags=["service"],
         responses={200: {"description": "The service is up",
                          "content": {"application/json": {"model": HealthResponse}}},
                    **errors.documented(500)})
def health() -> HealthResponse:
    return HealthResponse(status="ok", version=__version__, warnings=service.current().warnings())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = config.ApiConfig.from_env()
    return gate.handle(app.resolve, event, context, api_key=config.api_key(),
                       max_body_bytes=settings.max_body_bytes)
