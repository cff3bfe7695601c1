"""Webhook sender verification: GitHub, Stripe, Slack, Standard Webhooks and generic HMAC.

Every check runs on the raw body bytes before anything parses them, compares with
``hmac.compare_digest`` and says only ``ok``, ``missing``, ``forged`` or ``stale`` (the server
answers all three with the same bare 401 and counts them apart in ``/metrics``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from plait.triggers import Provider, Verify

Outcome = Literal["ok", "missing", "forged", "stale"]

#: Signature headers longer than this are refused before any work (a forged header can be huge).
MAX_HEADER = 4096


@dataclass(frozen=True)
class Checked:
    outcome: Outcome
    #: The sender's id of this delivery when its headers carry one (replay detection).
    delivery_id: str | None = None
    #: For senders that sign no timestamp (GitHub, ``hmac`` without ``timestampHeader``): a
    #: digest of the signed body. Their delivery id header is not signed, so a captured request
    #: resent with a new id is still recognised as the same delivery by this.
    replay_key: str | None = None


def check(
    verify: Verify, secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> Checked:
    """Whether ``body`` was signed by the holder of ``secret`` (``now``: Unix seconds)."""
    tolerance = verify.tolerance.total_seconds()
    if verify.provider is Provider.GITHUB:
        outcome = _github(secret, headers, body)
        default_id = headers.get("X-GitHub-Delivery")
    elif verify.provider is Provider.STRIPE:
        outcome = _stripe(secret, headers, body, now, tolerance)
        default_id = None  # the event id, in the body (read once it is verified)
    elif verify.provider is Provider.SLACK:
        outcome = _slack(secret, headers, body, now, tolerance)
        default_id = None  # event_id, in the body
    elif verify.provider is Provider.STANDARD_WEBHOOKS:
        outcome = _standard(secret, headers, body, now, tolerance)
        default_id = headers.get("webhook-id")
    else:
        outcome = _hmac(verify, secret, headers, body, now, tolerance)
        default_id = None
    if outcome != "ok":
        return Checked(outcome)
    wanted = headers.get(verify.delivery_id_header) if verify.delivery_id_header else default_id
    unstamped = verify.provider is Provider.GITHUB or (
        verify.provider is Provider.HMAC and not verify.timestamp_header
    )
    replay_key = "body:" + hashlib.sha256(body).hexdigest() if unstamped else None
    return Checked("ok", wanted[:255] if wanted else None, replay_key)


def _mac(secret: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, message, getattr(hashlib, algorithm)).digest()


def _equal_hex(expected: bytes, given: str) -> bool:
    return hmac.compare_digest(
        expected.hex().encode(), given.strip().lower().encode("ascii", "replace")
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None or not value.strip() or len(value) > MAX_HEADER:
        return None
    return value


def _timestamp(value: str | None, now: float, tolerance: float) -> Outcome | int:
    if value is None:
        return "missing"
    try:
        stamp = int(value.strip())
    except ValueError:
        return "forged"
    if abs(now - stamp) > tolerance:
        return "stale"
    return stamp


def _github(secret: str, headers: Mapping[str, str], body: bytes) -> Outcome:
    given = _header(headers, "X-Hub-Signature-256")
    if given is None:
        return "missing"
    scheme, _, signature = given.partition("=")
    expected = _mac(secret.encode(), body)
    if scheme.strip() != "sha256" or not _equal_hex(expected, signature):
        return "forged"
    return "ok"


def _stripe(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float
) -> Outcome:
    given = _header(headers, "Stripe-Signature")
    if given is None:
        return "missing"
    stamp_text = None
    candidates = []
    for item in given.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            stamp_text = value
        elif name == "v1":
            candidates.append(value)
    if stamp_text is None or not candidates:
        return "forged"
    expected = _mac(secret.encode(), stamp_text.encode("ascii", "replace") + b"." + body)
    # Every candidate is compared (no early exit) so timing tells nothing about which matched.
    matched = False
    for candidate in candidates:
        matched |= _equal_hex(expected, candidate)
    if not matched:
        return "forged"
    stamp = _timestamp(stamp_text, now, tolerance)
    return stamp if isinstance(stamp, str) else "ok"


def _slack(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float
) -> Outcome:
    given = _header(headers, "X-Slack-Signature")
    stamp_text = _header(headers, "X-Slack-Request-Timestamp")
    if given is None or stamp_text is None:
        return "missing"
    scheme, _, signature = given.partition("=")
    message = b"v0:" + stamp_text.encode("ascii", "replace") + b":" + body
    if scheme != "v0" or not _equal_hex(_mac(secret.encode(), message), signature):
        return "forged"
    stamp = _timestamp(stamp_text, now, tolerance)
    return stamp if isinstance(stamp, str) else "ok"


def _standard(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float
) -> Outcome:
    msg_id = _header(headers, "webhook-id")
    stamp_text = _header(headers, "webhook-timestamp")
    given = _header(headers, "webhook-signature")
    if msg_id is None or stamp_text is None or given is None:
        return "missing"
    raw_key = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw_key, validate=True)
    except (binascii.Error, ValueError):
        key = secret.encode()
    message = msg_id.encode("utf-8", "replace") + b"." + stamp_text.encode("ascii", "replace")
    expected = base64.b64encode(_mac(key, message + b"." + body)).decode()
    matched = False
    for item in given.split():
        version, _, signature = item.partition(",")
        if version == "v1":
            matched |= hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace"))
    if not matched:
        return "forged"
    stamp = _timestamp(stamp_text, now, tolerance)
    return stamp if isinstance(stamp, str) else "ok"


def _hmac(
    verify: Verify,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float,
) -> Outcome:
    assert verify.header is not None  # the model requires it for provider: hmac
    given = _header(headers, verify.header)
    if given is None:
        return "missing"
    message = body
    stamp_text = None
    if verify.timestamp_header:
        stamp_text = _header(headers, verify.timestamp_header)
        if stamp_text is None:
            return "missing"
        message = stamp_text.encode("ascii", "replace") + b"." + body
    if not given.startswith(verify.prefix):
        return "forged"
    signature = given[len(verify.prefix) :].strip()
    digest = _mac(secret.encode(), message, verify.algorithm)
    if verify.encoding == "hex":
        ok = _equal_hex(digest, signature)
    else:
        ok = hmac.compare_digest(base64.b64encode(digest), signature.encode("ascii", "replace"))
    if not ok:
        return "forged"
    if stamp_text is not None:
        stamp = _timestamp(stamp_text, now, tolerance)
        if isinstance(stamp, str):
            return stamp
    return "ok"
