"""The server's configuration: ``plait.yaml`` (or ``$PLAIT_CONFIG``), then ``PLAIT_*`` variables.

Every key of :class:`ServerConfig` can be set in the file and overridden by the environment
variable ``PLAIT_<KEY>`` (upper case), and the command line's ``--host``/``--port`` override both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from plait_sdk import UserError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from plait.flows import safe_load

ENV_CONFIG = "PLAIT_CONFIG"
DEFAULT_FILE = "plait.yaml"


class ServerConfig(BaseModel):
    """``plait server local`` settings (docs/configuration.md lists them with their defaults)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0: any free one).")
    home: Path | None = Field(
        None,
        description="The local home: SQLite database, internal storage, master key "
        "(default: $PLAIT_HOME or ./.plait).",
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_upload_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024,
        description="Largest FILE input uploaded with multipart/form-data (413 above).",
    )
    client_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds a client may take to send a request's headers (or keep an idle "
        "connection open), and to send more of a body it started; the connection is closed "
        "after it (0: no limit).",
    )
    shutdown_grace: float = Field(
        10.0, ge=0, description="Seconds running executions get to finish on SIGTERM/SIGINT."
    )
    rate_limit: float = Field(
        0,
        ge=0,
        description="Requests per second allowed to each token, on average (0: no limit).",
    )
    rate_burst: int = Field(
        100, ge=1, description="Requests a token may make at once before the rate applies."
    )
    public_paths: list[str] = Field(
        default_factory=lambda: ["/health", "/ready", "/metrics"],
        description="Which of /health, /ready and /metrics are served without a token.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none: CORS off)."
    )
    session_ttl: float = Field(
        8 * 3600, gt=0, description="Seconds a user's login session lasts (cookie auth)."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed logins (password) allowed per user name and per client address "
        "within login_failure_window before a lockout (429 with Retry-After).",
    )
    login_lockout: float = Field(
        1.0,
        gt=0,
        description="Seconds of the first lockout; each further failure doubles it.",
    )
    login_lockout_max: float = Field(900.0, gt=0, description="The longest lockout, in seconds.")
    login_failure_window: float = Field(
        900.0,
        gt=0,
        description="Seconds after the last failure (and the end of its lockout) when a user "
        "name's or address's failures are forgotten.",
    )
    login_concurrency: int = Field(
        2,
        ge=1,
        description="Password verifications (Argon2, in threads) run at once; the others wait.",
    )
    login_queue: int = Field(
        64,
        ge=0,
        description="Logins that may wait for a verification slot; beyond it, 429 at once.",
    )
    cookie_secure: bool = Field(
        False,
        description="Mark the session cookie Secure (set it when a TLS proxy serves the API).",
    )
    log_format: Literal["text", "json"] = Field("text", description="Server log lines.")
    bootstrap_token: bool = Field(
        True, description="On first start (no token yet), create an admin token and print it."
    )
    deploy: list[Path] = Field(
        default_factory=list, description="Flow files or directories deployed at start-up."
    )

    @field_validator("public_paths")
    @classmethod
    def _only_monitoring(cls, value: list[str]) -> list[str]:
        allowed = ("/health", "/ready", "/metrics")
        for path in value:
            if path not in allowed:
                raise ValueError(f"{path!r} cannot be public (only {', '.join(allowed)})")
        return value


def load_config(
    file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """The configuration from ``file`` (or ``$PLAIT_CONFIG``, or ``./plait.yaml`` when it exists),
    the ``PLAIT_*`` variables and ``overrides`` (``None`` values ignored), validated."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = file or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    if path is None and Path(DEFAULT_FILE).is_file():
        path = Path(DEFAULT_FILE)
    if path is not None:
        try:
            loaded = safe_load(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise UserError(
                f"cannot read the server configuration: {error}", file=str(path)
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError("the server configuration is a mapping of keys", file=str(path))
        data.update(loaded or {})
    for name, info in ServerConfig.model_fields.items():
        value = env.get(f"PLAIT_{name.upper()}")
        if value is None:
            continue
        data[name] = _split(value) if _is_list(info.annotation) else value
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServerConfig.model_validate(data)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise UserError(f"invalid server configuration: {problems}", file=str(path or "")) from None


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
