"""The dashboard's SVG charts: pure functions from numbers to markup, checked on the markup itself."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.dashboard.svg import HEIGHT, PAD_BOTTOM, PAD_TOP, bar_chart, label, line_chart, nice_ceiling

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


@pytest.mark.parametrize(
    ("value", "top"),
    [
        (0, "1"),
        (-3, "1"),
        (1, "1"),
        (3, "5"),
        (7, "10"),
        (21, "25"),
        (Decimal("6.25"), "10"),
        (Decimal("0.3"), "0.5"),
        (100, "100"),
        (101, "200"),
    ],
)
def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value(value: Decimal | int, top: str) -> None:
    assert nice_ceiling(value) == Decimal(top)


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4))
def test_the_axis_top_is_never_below_the_value_nor_more_than_twice_it(value: Decimal) -> None:
    assert value <= nice_ceiling(value) <= value * 2


def test_bars_are_proportional_and_labelled_with_the_exact_value() -> None:
    root = parse(bar_chart("Amount", ["10m", "1h", "24h"], [Decimal("2.5"), Decimal("5"), Decimal("6.25")]))
    heights = [float(r.get("height", "0")) for r in root.iterfind("svg:rect", NS)]
    plot = HEIGHT - PAD_TOP - PAD_BOTTOM
    assert heights == pytest.approx([plot * 0.25, plot * 0.5, plot * 0.625], abs=0.1)  # axis top 10
    values = [t.text for t in root.iterfind("svg:text", NS) if t.get("class") == "value"]
    assert values == ["2.5", "5", "6.25"]
    assert root.get("aria-label") == "Amount" and root.findtext("svg:title", namespaces=NS) == "Amount"


def test_no_data_draws_no_bar_and_says_so() -> None:
    root = parse(bar_chart("Success rate", ["10m", "1h"], [None, Decimal("50.00")], top=100))
    assert len(list(root.iterfind("svg:rect", NS))) == 1
    assert "–" in [t.text for t in root.iterfind("svg:text", NS)]


def test_a_line_breaks_where_there_is_no_data_and_marks_every_point() -> None:
    root = parse(line_chart("Rate", [f"{h:02d}:00" for h in range(6)], [1, 2, None, 3, 4, 5], every=2))
    lines = [p.get("points", "").split() for p in root.iterfind("svg:polyline", NS)]
    assert [len(points) for points in lines] == [2, 3]
    assert len(list(root.iterfind("svg:circle", NS))) == 5
    ticks = [t.text for t in root.iterfind("svg:text", NS) if t.get("class") == "tick"]
    assert ticks[2:] == ["00:00", "02:00", "04:00", "05:00"]  # after the axis labels: every 2nd, and the last


def test_text_is_escaped_and_mismatched_input_is_refused() -> None:
    svg = bar_chart("<script>", ["a&b"], [1])
    assert "<script>" not in svg and "a&amp;b" in svg
    parse(svg)
    with pytest.raises(ValueError, match="2 labels for 1 values"):
        line_chart("x", ["a", "b"], [1])


def test_labels_are_exact_decimals_without_float_noise() -> None:
    assert [label(Decimal("0.1") + Decimal("0.2")), label(Decimal("100.00")), label(None)] == ["0.3", "100", "–"]
    assert [label(Decimal("1E+3")), label(Decimal("0.0000000001")), label(7)] == ["1000", "0.0000000001", "7"]
