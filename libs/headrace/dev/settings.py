"""What `headrace dev` is configured with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from headrace.core.retention import DEFAULT_DEAD_LETTER_RETENTION_S, DEFAULT_RETENTION_S
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys
from headrace.runtime.shared_options import DEFAULT_EXECUTOR_CONCURRENCY


@dataclass(frozen=True)
class DevSettings:
    host: str = "127.0.0.1"
    port: int = 8288
    # Where the SQLite file lives; None keeps everything in memory (a throwaway run).
    state_dir: Path | None = Path(".headrace")
    sdk_urls: list[str] = field(default_factory=list)
    poll_interval_s: float = 5.0
    event_keys: dict[str, str] | None = None
    signing_key: str | None = None
    # An app's answer to a signed call must be signed too (docs/answer-signatures.md).
    require_signed_answers: bool = False
    partitions: int = 4
    # Every retry waits this long (`--retry-interval`); None: Inngest's exponential backoff.
    retry_interval_s: float | None = None
    call_timeout_s: float = 300.0
    # How long a Durable Endpoint's request may hold its run before the run fails.
    endpoint_timeout_s: float = 3600.0
    executor_concurrency: int = DEFAULT_EXECUTOR_CONCURRENCY
    # A run fails when its settled steps reach this (Inngest's limit).
    max_steps: int = DEFAULT_MAX_STEPS
    # Topics (under the prefix) of the embedded log whose records the intake reads as events.
    intake_topics: tuple[str, ...] = ("intake",)
    # Asked by the dashboard and /metrics when keys are required (a random one when not given).
    dashboard_token: str | None = None
    # Seconds ended runs (memos, history) and events are kept; dead letters likewise.
    retention_s: int = DEFAULT_RETENTION_S
    dead_letter_retention_s: int = DEFAULT_DEAD_LETTER_RETENTION_S
    # Writing requests per client (api/rate_limit.py): none by default, on one's own machine.
    rate_limit: ClientRate = field(default_factory=ClientRate)

    def accounts(self) -> AccountKeys:
        """One account; its signing key, when given, makes the server check signatures; no
        event keys accept any key."""
        pairs = self.event_keys.items() if self.event_keys is not None else None
        return AccountKeys.of(pairs, self.signing_key)
