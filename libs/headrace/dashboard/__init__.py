"""The web dashboard: runs and their timelines, events, apps and functions, and the run
controls, rendered on the server with Jinja2 and kept live with htmx (vendored in `static/`,
so installing headrace needs no front-end build)."""

from headrace.dashboard.auth import DashboardAuth
from headrace.dashboard.routes import dashboard_routes

__all__ = ["DashboardAuth", "dashboard_routes"]
