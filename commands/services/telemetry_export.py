"""The window metrics as OpenTelemetry gauges: which series are exported, and the exporter."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from commands.context import Context
from commands.logs import Redactor
from projections import telemetry
from projections.windows import WindowProjection

log = logging.getLogger(__name__)


def snapshot_of(projection: WindowProjection, ctx: Context) -> Iterator[telemetry.Sample]:
    """Overall and per-plan gauges for every window, and per-user ones when opted in (capped)."""
    now = ctx.clock()
    for user, plan, attributes in export_scopes(ctx):
        for m in projection.all_windows(now, user=user, plan=plan):
            for name in telemetry.GAUGES:
                value = getattr(m, name)
                if value is not None:
                    yield telemetry.Sample(m.window, name, float(value), attributes)


def export_scopes(ctx: Context) -> list[tuple[str | None, str | None, dict[str, str]]]:
    """(party, plan, attributes) of every exported series; ``scope`` keeps their attribute sets apart."""
    scopes: list[tuple[str | None, str | None, dict[str, str]]] = [
        (None, None, {"scope": "overall", "subscription": "all"})
    ]
    scopes += [(None, p.name, {"scope": "plan", "subscription": p.name}) for p in ctx.catalogue.plans]
    if ctx.settings.otel_per_user_series:
        users = ctx.catalogue.users[: ctx.settings.otel_max_user_series]
        scopes += [(u.party, None, {"scope": "user", "user": u.id, "subscription": "all"}) for u in users]
    return scopes


def start_telemetry(ctx: Context, projection: WindowProjection) -> telemetry.Telemetry | None:
    s = ctx.settings
    if not telemetry.enabled(s.opentelemetry_ingesting_host, os.environ):
        return None
    if s.otel_per_user_series and len(ctx.catalogue.users) > s.otel_max_user_series:
        log.warning(
            "per-user OTel series capped; the other users stay in `billing metrics --user`",
            extra={"users": len(ctx.catalogue.users), "exported": s.otel_max_user_series},
        )
    dest = telemetry.Destination.from_settings(s.opentelemetry_ingesting_host, s.opentelemetry_source_token)
    res = telemetry.resource(s.app_name, s.canton_chain, s.opentelemetry_source_id)
    return telemetry.Telemetry(
        res,
        dest,
        lambda: list(snapshot_of(projection, ctx)),
        s.otel_export_interval_secs,
        redact=Redactor(s.secrets()).redact,
    )
