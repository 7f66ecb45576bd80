"""`headrace dev`'s ingest: the parts of the distributed ingest (services/ingest/parts.py) on the
embedded adapters, served with what one process has instead: the routes on its embedded log
(dev/log_routes.py), a realtime bus inside the process, the syncer that polls the apps given at
start, and a dashboard open unless keys are required (dev/dashboard_access.py)."""

from __future__ import annotations

from headrace.api.realtime import realtime_routes
from headrace.core.clock import Clock
from headrace.dashboard import dashboard_routes
from headrace.dev.dashboard_access import dashboard_auth
from headrace.dev.embedded import Embedded
from headrace.dev.log_routes import dev_log_routes
from headrace.messages.topics import Topics
from headrace.obs.logging import register_secrets
from headrace.protocol.app_syncer import AppSyncer
from headrace.realtime.bus import LocalBus
from headrace.realtime.hub import Hub
from headrace.realtime.tokens import TokenIssuer
from headrace.runtime.settings import Settings
from headrace.services.ingest.http import build_app
from headrace.services.ingest.parts import IngestParts


class DevIngest:
    def __init__(
        self, settings: Settings, embedded: Embedded, topics: Topics, clock: Clock
    ) -> None:
        self.parts = IngestParts.build(settings, embedded.log, topics, embedded.stores, clock)
        ctx = self.parts.ctx
        keys = ctx.keys
        storage = settings.embedded
        self.syncer = AppSyncer(
            storage.sdk_urls, storage.poll_interval_s, keys, clock, self.parts.sync.register
        )
        self.dashboard_auth, self.dashboard_login = dashboard_auth(settings, keys.required)
        # Here rather than in the command: the token may be one this server made up.
        register_secrets([*keys.secret_values(), self.dashboard_auth.token])
        self.app = build_app(
            ctx,
            self.parts.events,
            self.parts.sync,
            extra_routes=[
                *dev_log_routes(ctx, embedded.bare_log, topics, settings.intake_topics),
                # One process: a published message goes straight to the subscribers.
                *realtime_routes(ctx, LocalBus(Hub()), TokenIssuer(keys)),
                *dashboard_routes(ctx, self.dashboard_auth, self.syncer),
            ],
            metrics_allows=self.dashboard_auth.allows,
            rate_limit=settings.rate_limit,
        )
