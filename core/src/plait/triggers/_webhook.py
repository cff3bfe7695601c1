"""``plait.core.Webhook``: start a flow from an HTTP request, optionally signed by its sender.

The server (``plait.server._webhooks``) serves the endpoint; this module only declares the
trigger's properties, so the flow validator, the schema and the reference know them.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal

from plait_sdk import Example, Model, WebhookTrigger
from pydantic import Field, model_validator


class Provider(StrEnum):
    """Who signs the requests, and so how a signature is checked."""

    GITHUB = "github"
    STRIPE = "stripe"
    SLACK = "slack"
    STANDARD_WEBHOOKS = "standard-webhooks"
    HMAC = "hmac"


class FetchType(StrEnum):
    """How a webhook keeps the request body."""

    AUTO = "AUTO"
    FETCH = "FETCH"
    STORE = "STORE"


class Verify(Model):
    """How the sender's signature is checked (on the raw body, before anything is parsed)."""

    provider: Provider
    """`github`, `stripe`, `slack`, `standard-webhooks` or `hmac` (configurable)."""
    secret: str = Field(min_length=1)
    """The NAME of the secret holding the signing secret (resolved like `secret('NAME')`)."""
    header: str | None = None
    """`hmac`: the header carrying the signature."""
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    """`hmac`: the HMAC digest."""
    encoding: Literal["hex", "base64"] = "hex"
    """`hmac`: how the signature is written."""
    prefix: str = ""
    """`hmac`: text before the signature in the header (`sha256=`)."""
    timestamp_header: str | None = None
    """`hmac`: a header with the send time (Unix seconds); the signed text is then
    `<timestamp>.<body>` and a time outside `tolerance` is refused."""
    tolerance: timedelta = timedelta(minutes=5)
    """How far a signed timestamp may be from the server's clock (Stripe: 300 s)."""
    delivery_id_header: str | None = None
    """A header naming the delivery: one seen before starts no second execution. Defaults:
    `X-GitHub-Delivery`, the Stripe event id, Slack's `event_id`, `webhook-id`."""

    @model_validator(mode="after")
    def _hmac_needs_header(self) -> Verify:
        if self.provider is Provider.HMAC and not self.header:
            raise ValueError("verify.header is required with provider: hmac")
        return self


class Webhook(WebhookTrigger):
    """Start an execution from `GET|POST|PUT /api/v1/executions/webhook/{namespace}/{flowId}/{key}`.

    The flow sees the request as `trigger.body` (JSON parsed, form fields as a map, anything
    else as text), `trigger.headers` and `trigger.parameters` (query), each name mapped to a
    list of values as in Kestra. A wrong key, an unknown or a disabled flow all answer 404.
    """

    type_name: ClassVar[str] = "plait.core.Webhook"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.trigger.Webhook",
        "io.kestra.core.models.triggers.types.Webhook",
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            title="A GitHub push starts the flow; the signature is checked with a stored secret",
            code=(
                "triggers:\n"
                "  - id: github\n"
                "    type: plait.core.Webhook\n"
                "    key: 4wjtkzwVGBM9yKnjm3yv8r\n"
                "    verify:\n"
                "      provider: github\n"
                "      secret: GITHUB_WEBHOOK_SECRET\n"
            ),
        ),
    )

    key: str = Field(min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_\-.~]+$")
    """The URL key (16+ URL-safe characters): treat it like a password."""
    wait: bool = False
    """Answer once the execution ended, with its outputs (a failed flow answers 500)."""
    timeout: timedelta = timedelta(seconds=30)
    """With `wait`: the longest wait; after it the answer is 202 with the running execution."""
    # ``verify`` is the property's name in flows; the SDK's ``verify()`` method keeps its own.
    signature: Verify | None = Field(None, alias="verify")
    """Check the sender's signature; unsigned, forged or stale requests get 401."""
    max_body_bytes: int = Field(1024 * 1024, ge=1, le=64 * 1024 * 1024)
    """Largest accepted body (413 above)."""
    rate_limit: float = Field(0, ge=0)
    """Requests a second this key accepts (0: no limit); above it 429 with `Retry-After`."""
    rate_burst: int = Field(10, ge=1)
    """With `rateLimit`: requests accepted at once before the rate applies."""
    fetch_type: FetchType = FetchType.AUTO
    """`STORE`: always keep the body as a file in internal storage (`trigger.body` and
    `trigger.uri` are its `plait://` URI). By default only a body that is not JSON, a form or
    text, or is larger than `webhook_body_inline_max_bytes`, is stored."""
    response_code: int | str | None = None
    """The status of the answer (a template; with `wait`, it sees the execution's outputs).
    Default: 200, and with `wait` 500 for a failed execution and 202 for a running one."""
    response_content_type: str | None = None
    """The Content-Type of the answer (default `application/json`, or `text/plain` for a
    `responseBody` that renders to text)."""
    response_headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers of the answer (templates)."""
    response_body: Any = None
    """The answer's body instead of the execution (a template, or a map/list rendered to JSON);
    it sees `trigger.*`, `execution.*` and, with `wait`, `outputs.<taskId>.*`."""
