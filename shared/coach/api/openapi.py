"""The API's resolver: Powertools' REST resolver whose published OpenAPI document lists only real answers.

Powertools documents a `422 HTTPValidationError` on every validated route, but this API turns every
validation failure into a 400 in its own error shape (see coach.api.errors), so the document drops the 422
and its schemas: a client generated from it must not expect an answer the API never gives.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")


class CritiqueApiResolver(APIGatewayRestResolver):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        spec = super().get_openapi_schema(*args, **kwargs)
        for path in (spec.paths or {}).values():
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                operation = getattr(path, method, None)
                if operation is not None and operation.responses:
                    for status in (422, "422"):
                        operation.responses.pop(status, None)
        schemas = spec.components.schemas if spec.components else None
        if schemas:
            for name in _UNUSED_SCHEMAS:
                schemas.pop(name, None)
        return spec
