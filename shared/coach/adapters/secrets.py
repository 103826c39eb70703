"""Secrets from Secrets Manager through Powertools Parameters (cached), with a local key taking precedence."""

from __future__ import annotations

from typing import Any

from coach.errors import ConfigError

SECRET_MAX_AGE = 300


def _get_secret(name: str) -> Any:
    from aws_lambda_powertools.utilities import parameters

    try:
        return parameters.get_secret(name, transform="auto", max_age=SECRET_MAX_AGE)
    except Exception:
        try:
            return parameters.get_secret(name, max_age=SECRET_MAX_AGE)
        except Exception as exc:
            raise ConfigError(f"cannot read secret '{name}': {type(exc).__name__}", code="secret_unreadable") from exc


def openai_api_key(secret_name: str | None, local_key: str | None = None) -> str | None:
    """A local key (OPENAI_API_KEY, from the settings) wins; in the cloud the key comes from the named secret."""
    if local_key:
        return local_key
    if not secret_name:
        return None
    value = _get_secret(secret_name)
    if isinstance(value, dict):
        value = value.get("api_key") or value.get("OPENAI_API_KEY")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"secret '{secret_name}' has no api_key", code="secret_invalid")
    return value.strip()


def reddit_credentials(secret_name: str | None) -> dict[str, str] | None:
    if not secret_name:
        return None
    value = _get_secret(secret_name)
    if not isinstance(value, dict) or not value.get("client_id") or not value.get("client_secret"):
        raise ConfigError(
            f"secret '{secret_name}' must be JSON with client_id and client_secret", code="secret_invalid"
        )
    return {k: str(v) for k, v in value.items()}
