"""The dashboard page as HTML, from one `Snapshot`: pure functions, every value escaped.

Each tile carries its metric name and exact value (``data-metric``, ``data-value``), so a
test, or a script scraping the page, reads the same numbers `billing metrics --json` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from html import escape

from commands.dashboard.data import FeedItem, PlanRow, Snapshot
from commands.dashboard.style import CSS, FEED_COLUMNS, SCRIPT
from commands.dashboard.svg import bar_chart, label, line_chart
from projections.windows import WindowMetrics

Value = Decimal | int | None
# (attribute of WindowMetrics, title, unit, fixed axis top)
METRICS: tuple[tuple[str, str, str, int | None], ...] = (
    ("payment_count", "Payments", "", None),
    ("total_amount", "Amount", "CC", None),
    ("success_rate", "Success rate", "%", 100),
    ("failure_count", "Failures", "", None),
    ("active_users", "Active users", "", None),
    ("active_subscriptions", "Active subscriptions", "", None),
)
#: Distinct counts are kept as each member's last active minute, exact for windows that end
#: now; a window ending an hour ago would miss members active in both hours, so no hourly line.
DISTINCT = frozenset({"active_users", "active_subscriptions"})
DISTINCT_NOTE = (
    "Distinct counts are exact for windows ending now; "
    "an hour-by-hour line would undercount members active in several hours, so none is drawn."
)


def page(snap: Snapshot, *, app_name: str, chain: str, nonce: str) -> str:
    """The whole document: header, the live part (refreshed in place), the audit feed.

    ``nonce`` marks our one inline script, the only one the page's security policy runs.
    """
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(app_name)} · billing dashboard</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(app_name)} · billing</h1><span class="meta">chain {escape(chain)}</span></header>'
        f'<main id="live">{live(snap)}</main>'
        f'<section class="feed">{feed(snap)}</section>'
        "<footer>Numbers are the window projection folded from the event log, the same as "
        "<code>billing metrics</code>; the feed is the log itself (<code>billing tail</code>).</footer>"
        f'<script nonce="{escape(nonce)}">{SCRIPT}</script></body></html>'
    )


def live(snap: Snapshot) -> str:
    """The part the page re-fetches: tiles, charts, plans and failures."""
    day = next(m for m in snap.windows if m.window == "24h")
    return (
        f'<div class="meta" id="as-of" data-as-of="{snap.as_of.isoformat()}"></div>'
        f'<div class="tiles">{tiles(day)}</div>'
        f"<h2>Each metric across the seven windows, and hour by hour "
        f'<span class="status">as of {snap.as_of:%Y-%m-%d %H:%M:%S} UTC · {escape(snap.source)} · '
        f"{snap.position} log records folded</span></h2>"
        f'<div class="cards">{cards(snap)}</div>'
        f'<div class="split"><div><h2>Revenue per plan</h2>{plans(snap.plans)}</div>'
        f"<div><h2>Latest failures</h2>{failures(snap.failures)}</div></div>"
    )


def tiles(day: WindowMetrics) -> str:
    subs = {
        "payment_count": f"{day.success_count} confirmed",
        "total_amount": "confirmed payments only",
        "success_rate": "of payments with an outcome",
        "failure_count": "final failures",
        "active_users": "paid or failed",
        "active_subscriptions": "user–plan pairs",
    }
    out = []
    for name, title, unit, _ in METRICS:
        value: Value = getattr(day, name)
        css = "tile bad" if name == "failure_count" and day.failure_count else "tile"
        shown = label(value) + (_unit(unit) if value is not None else "")
        out.append(
            f'<div class="{css}" data-metric="{name}"><div class="label">{title} · 24 h</div>'
            f'<div class="value" data-value="{_raw(value)}">{shown}'
            f'</div><div class="sub">{subs[name]}</div></div>'
        )
    return "".join(out)


def cards(snap: Snapshot) -> str:
    windows = [m.window for m in snap.windows]
    hours = [f"{p.ending:%H:%M}" for p in snap.hourly]
    out = []
    for name, title, unit, top in METRICS:
        across = bar_chart(f"{title} per window", windows, [getattr(m, name) for m in snap.windows], top=top)
        if name in DISTINCT:
            over = f'<p class="caption">{DISTINCT_NOTE}</p>'
        else:
            over = (
                line_chart(
                    f"{title} per hour, last 24 h", hours, [getattr(p.metrics, name) for p in snap.hourly], top=top
                )
                + '<div class="caption">per hour, last 24 h</div>'
            )
        heading = f"{title} ({unit})" if unit else title
        out.append(
            f'<div class="card" data-chart="{name}"><h3>{heading}</h3><div class="pair">'
            f'<div>{across}<div class="caption">per window</div></div>'
            f"<div>{over}</div></div></div>"
        )
    return "".join(out)


def plans(rows: Sequence[PlanRow]) -> str:
    head = [
        "plan",
        "price",
        "payments 24 h",
        "amount 24 h",
        "amount 7 d",
        "amount 30 d",
        "success 30 d",
        "subscriptions 30 d",
    ]
    body = [
        [
            r.plan,
            f"{r.price} {r.currency} / {_interval(r.interval_sec)}",
            r.day.payment_count,
            f"{r.day.total_amount} CC",
            f"{r.week.total_amount} CC",
            f"{r.month.total_amount} CC",
            _rate(r.month.success_rate),
            r.month.active_subscriptions,
        ]
        for r in rows
    ]
    return _table(
        head,
        body,
        "no plans in subscriptions.json",
        numeric=range(2, len(head)),
        row_attr=lambda i: f'data-plan="{escape(rows[i].plan)}"',
    )


def failures(items: Sequence[FeedItem]) -> str:
    body = [[f.at, f.user, f.plan, f.detail] for f in items]
    table = _table(["time", "user", "plan", "reason"], body, "no failures in the recent log")
    return f'<div class="failures">{table}</div>'


def feed(snap: Snapshot) -> str:
    rows = "".join(
        f'<tr class="{escape(f.kind)}">'
        + "".join(f"<td>{escape(str(getattr(f, c)))}</td>" for c in FEED_COLUMNS)
        + "</tr>"
        for f in snap.feed
    )
    empty = f'<tr><td class="empty" colspan="{len(FEED_COLUMNS)}">no events yet</td></tr>'
    head = "".join(f"<th>{c}</th>" for c in FEED_COLUMNS)
    return (
        f'<h2>Live audit feed <span class="status" id="feed-status">connecting…</span></h2>'
        f'<table><thead><tr>{head}</tr></thead><tbody id="feed" data-next="{snap.feed_next}">'
        f"{rows or empty}</tbody></table>"
    )


def _table(
    head: Sequence[str],
    body: Sequence[Sequence[object]],
    empty: str,
    *,
    numeric: range = range(0),
    row_attr: Callable[[int], str] | None = None,
) -> str:
    """A table; the ``numeric`` columns are right-aligned."""

    def cell(tag: str, j: int, v: object) -> str:
        css = ' class="num"' if j in numeric else ""
        return f"<{tag}{css}>{escape(str(v))}</{tag}>"

    heads = "".join(cell("th", j, h) for j, h in enumerate(head))
    rows = "".join(
        f"<tr {row_attr(i) if row_attr else ''}>" + "".join(cell("td", j, v) for j, v in enumerate(r)) + "</tr>"
        for i, r in enumerate(body)
    )
    rows = rows or f'<tr><td class="empty" colspan="{len(head)}">{escape(empty)}</td></tr>'
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def _unit(unit: str) -> str:
    return f" {unit}" if unit == "CC" else unit


def _raw(value: Value) -> str:
    return "" if value is None else str(value)


def _rate(rate: Decimal | None) -> str:
    return "–" if rate is None else f"{rate}%"


def _interval(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"
