"""Charts for the local dashboard as inline SVG: small pure functions from numbers to markup.

No JavaScript, no build step, no fonts or scripts from the network: the browser draws what
the server wrote. Values arrive as the projection's own numbers (Decimal or int); floats
appear only as pixel coordinates, never as amounts, and every label prints the exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

Number = Decimal | int
WIDTH, HEIGHT = 320, 140
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 34, 18, 16, 22


def nice_ceiling(value: Number) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value`` (1 for zero or less): a readable axis top."""
    value = Decimal(value)
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** (value.adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if power * step >= value:
            return (power * step).normalize()
    raise AssertionError("unreachable: 10 × 10^k is always above a number with k integer digits")


def label(value: Number | None) -> str:
    """How a value reads on a chart: exact, without trailing zeros; an en dash for "no data"."""
    if value is None:
        return "–"
    text = format(Decimal(value).normalize(), "f")
    return text


def bar_chart(title: str, labels: Sequence[str], values: Sequence[Number | None], *, top: Number | None = None) -> str:
    """Vertical bars, one per label, each with its exact value above it; ``None`` draws no bar."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    axis = nice_ceiling(top if top is not None else max((v for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(values), 1)
    parts = [_frame(title, axis)]
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD_LEFT + i * slot
        centre = x + slot / 2
        parts.append(_text(centre, HEIGHT - 6, name, "tick"))
        if value is None:
            parts.append(_text(centre, PAD_TOP + plot_h - 4, "–", "value muted"))
            continue
        h = plot_h * float(Decimal(value) / axis)
        y = PAD_TOP + plot_h - h
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.18:.1f}" y="{y:.1f}" width="{slot * 0.64:.1f}" '
            f'height="{h:.1f}" rx="2"><title>{escape(name)}: {label(value)}</title></rect>'
        )
        parts.append(_text(centre, y - 3, label(value), "value"))
    return _svg(title, parts)


def line_chart(
    title: str, labels: Sequence[str], values: Sequence[Number | None], *, top: Number | None = None, every: int = 6
) -> str:
    """A line over time (oldest first), a dot per point; ``None`` breaks the line; every ``every``-th label shown."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    axis = nice_ceiling(top if top is not None else max((v for v in values if v is not None), default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(values) - 1, 1)
    parts = [_frame(title, axis)]
    runs: list[list[str]] = [[]]
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD_LEFT + i * step
        if i % every == 0 or i == len(values) - 1:
            parts.append(_text(x, HEIGHT - 6, name, "tick"))
        if value is None:
            runs.append([])
            continue
        y = PAD_TOP + plot_h - plot_h * float(Decimal(value) / axis)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="2.2"><title>{escape(name)}: '
            f"{label(value)}</title></circle>"
        )
    lines = [f'<polyline class="line" points="{" ".join(run)}"/>' for run in runs if len(run) > 1]
    return _svg(title, [parts[0], *lines, *parts[1:]])


def _frame(title: str, axis: Decimal) -> str:
    """Axis top and zero labels with light grid lines: enough to read a value off the chart."""
    bottom = HEIGHT - PAD_BOTTOM
    return (
        f'<line class="grid" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{bottom}" x2="{WIDTH - PAD_RIGHT}" y2="{bottom}"/>'
        + _text(PAD_LEFT - 4, PAD_TOP + 4, label(axis), "tick end")
        + _text(PAD_LEFT - 4, bottom + 4, "0", "tick end")
    )


def _text(x: float, y: float, text: str, css: str) -> str:
    anchor = "end" if css.endswith(" end") else "middle"
    css = css.removesuffix(" end")
    return f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _svg(title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )
