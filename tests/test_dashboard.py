"""dashboard/billing.json: well-formed, no overlapping tiles, queries only what we export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from projections.telemetry import exported_metric_names

DASHBOARD = json.loads((Path(__file__).resolve().parents[1] / "dashboard" / "billing.json").read_text())


def test_every_queried_metric_is_exported_and_every_exported_one_is_shown() -> None:
    exported = set(exported_metric_names())
    queried = {m for c in DASHBOARD["charts"] for m in re.findall(r"name = '([^']+)'", c["query"])}
    assert queried and queried <= exported, queried - exported
    assert exported - queried == {"canton.billing.test.metric"}, exported - queried  # only test-otel's probe


def test_totals_come_from_the_overall_series_only() -> None:
    for chart in DASHBOARD["charts"]:
        if "canton.billing.window." in chart["query"]:  # gauges: never an average of totals and parts
            assert "metricTag('scope')" in chart["query"], chart["name"]
        else:  # counters and the histogram: one series per plan
            assert "metricTag('subscription')" in chart["query"] and "GROUP BY time, series" in chart["query"]


def test_no_tiles_overlap_on_the_12_column_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    for chart in DASHBOARD["charts"]:
        assert chart["x"] >= 0 and chart["x"] + chart["w"] <= 12, chart["name"]
        for x in range(chart["x"], chart["x"] + chart["w"]):
            for y in range(chart["y"], chart["y"] + chart["h"]):
                assert (x, y) not in cells, f"{chart['name']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = chart["name"]


def test_no_hard_coded_source_and_idle_failure_rate_is_empty() -> None:
    text = json.dumps(DASHBOARD)
    assert "1369463" not in text and all("{{source}}" in c["query"] for c in DASHBOARD["charts"])
    failure = next(c for c in DASHBOARD["charts"] if c["name"].startswith("Failure rate"))
    assert "if(pc = 0, NULL" in failure["query"]
