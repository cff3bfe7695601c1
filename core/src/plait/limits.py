"""Every resource limit of the hub in one place, with its default and its environment variable.

A shared service must bound what one flow author can make it do: parse, render, log, nest,
hold. Each limit here is documented in docs/security.md and configurable with the environment
variable ``PLAIT_LIMIT_<NAME>`` (``PLAIT_LIMIT_TEMPLATE_MAX_STRING=1048576``); the server's
config file (docs/configuration.md, when it lands) reads the same fields. A bad value is a
:class:`~plait_sdk.UserError` naming the variable, never a traceback.

Code reads the process-wide values with :func:`limits`; tests override them with
:func:`override_limits`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from plait_sdk import UserError

ENV_PREFIX = "PLAIT_LIMIT_"


@dataclass(frozen=True)
class Limits:
    """The limits in force. Sizes are in bytes (strings: characters), durations in seconds."""

    # Flow files (YAML)
    flow_file_max_bytes: int = 4 * 1024 * 1024
    """Largest flow file read."""
    yaml_max_aliases: int = 1_000
    """Alias (``*name``) uses in one flow file."""
    yaml_max_nodes: int = 200_000
    """Nodes in one flow file once its aliases are expanded (billion-laughs guard)."""
    yaml_max_depth: int = 100
    """Nesting depth of mappings and lists in a flow file (a Sequential in a Sequential...)."""

    # Templates
    template_max_string: int = 16 * 1024 * 1024
    """Longest string an operator or filter may produce while rendering."""
    template_max_items: int = 1_000_000
    """Most items in a list, dict or range produced while rendering."""
    template_max_int_bits: int = 4_096
    """Largest integer (in bits) an operator may produce; ``2 ** 4097`` is refused."""
    template_render_seconds: float = 5.0
    """Time budget of one render (one property of one task run)."""
    template_regex_seconds: float = 1.0
    """Time budget of one regular expression match."""

    # Executions
    subflow_max_depth: int = 25
    """Nesting of subflow executions (a flow calling itself, directly or not)."""
    webhook_body_inline_max_bytes: int = 256 * 1024
    """A webhook body larger than this (or binary) is stored as a file, not in the row."""
    flow_trigger_max_depth: int = 10
    """Flow triggers in one chain (A's end starts B, B's end starts C...): a loop of flow
    triggers stops here, with the reason logged and shown as the trigger's last error."""
    log_line_max_bytes: int = 64 * 1024
    """Longest log line stored; longer ones are cut with a marker saying how much was cut."""
    log_max_lines_per_task_run: int = 10_000
    """Log lines stored per task run; the rest are counted in one closing summary line."""
    log_max_bytes_per_task_run: int = 16 * 1024 * 1024
    """Log bytes stored per task run; the rest are counted in one closing summary line."""

    namespace_file_max_bytes: int = 32 * 1024 * 1024
    """Largest namespace file stored (upload, API, ``UploadFiles``); a larger one is refused."""

    backfill_max_ticks: int = 100_000
    """Ticks one schedule backfill may cover (start to end); a larger range is refused."""

    # Ownership and faults
    lease_seconds: float = 30.0
    """How long an execution's lease lasts without a heartbeat before recovery may take it."""
    database_busy_seconds: float = 30.0
    """How long a locked database is retried (with backoff) before the step gives up."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by ``PLAIT_LIMIT_<NAME>`` variables."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            var = ENV_PREFIX + field.name.upper()
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _parse(var, raw, float if field.type == "float" else int)
        return cls(**values)

    def describe(self) -> list[tuple[str, str, Any]]:
        """(variable, description, value) of every limit, for docs and ``--help`` output."""
        out = []
        for field in fields(self):
            out.append((ENV_PREFIX + field.name.upper(), field.name, getattr(self, field.name)))
        return out


def _parse(var: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(raw.replace("_", ""))
    except ValueError:
        raise UserError(f"{var}: expected a {kind.__name__}, got {raw!r}") from None
    if value <= 0:
        raise UserError(f"{var}: must be greater than 0, got {raw!r}")
    return value


_current: Limits | None = None


def limits() -> Limits:
    """The limits of this process (read from the environment once)."""
    global _current
    if _current is None:
        _current = Limits.from_env()
    return _current


@contextmanager
def override_limits(**changes: Any) -> Iterator[Limits]:
    """Run a block with some limits changed (tests, and embedders that configure in code)."""
    global _current
    before = limits()
    _current = dataclasses.replace(before, **changes)
    try:
        yield _current
    finally:
        _current = before
