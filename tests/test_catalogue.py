"""The catalogue: original shapes, located errors, no silent emptying, exact lookups."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from commands.catalogue import load
from commands.errors import CatalogueError, NotFound

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _edit(data_dir: Path, name: str, change: Callable[[Any], object]) -> None:
    path = data_dir / name
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_sample_data_loads_and_is_active_for_years(data_dir: Path) -> None:
    cat = load(data_dir)
    assert {p.name for p in cat.plans} >= {"prover", "verifier"}
    assert cat.plan("prover").price == Decimal("2")
    assert cat.plan("prover").interval == 300
    assert len(cat.active_pairs(NOW)) >= 4
    later = datetime(2029, 6, 1, tzinfo=UTC)
    assert len(cat.active_pairs(later)) >= 4, "sample subscriptions must stay active for years"


def test_prices_are_exact_decimals(data_dir: Path) -> None:
    _edit(data_dir, "subscriptions.json", lambda d: d["subscriptions"][0].update(price=0.1))
    assert load(data_dir).plans[0].price == Decimal("0.1")


def test_expiry_day_itself_is_active_in_utc(data_dir: Path) -> None:
    cat = load(data_dir)
    sub = cat.find_user("alice").subscriptions[0]
    end_day = datetime.combine(sub.expires_at, datetime.min.time(), UTC)
    assert sub.active(end_day.replace(hour=23, minute=59))
    assert not sub.active(sub.ends_at)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["subscriptions"][1].update(price=-1), "subscriptions[1].price: must be greater than 0"),
        (lambda d: d["subscriptions"][1].update(price=0), "subscriptions[1].price: must be greater than 0"),
        (lambda d: d["subscriptions"][0].update(price=0.12345678901), "at most 10 decimals"),
        (lambda d: d["subscriptions"][0].update(currency="USD"), 'subscriptions[0].currency: must be "CC"'),
        (lambda d: d["subscriptions"][0].update(interval_sec=300), "subscriptions[0]: interval_sec"),
        (lambda d: d["subscriptions"][0].update(interval_sec="30"), "interval_sec: must be a string"),
        (lambda d: d["subscriptions"][1].update(name="prover"), "'prover' is already used by"),
        (lambda d: d["subscriptions"][0].pop("name"), "subscriptions[0]"),
    ],
)
def test_bad_plans_are_located(data_dir: Path, change: Callable[[Any], object], expected: str) -> None:
    _edit(data_dir, "subscriptions.json", change)
    with pytest.raises(CatalogueError) as caught:
        load(data_dir)
    assert expected in str(caught.value)
    assert "subscriptions.json" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["users"][2].update(email="carol"), "users[2].email: not an email address"),
        (lambda d: d["users"][0].update(party="alice"), "users[0].party: must be a party id"),
        (lambda d: d["users"][1].update(party=d["users"][0]["party"]), "users[1].party:"),
        (lambda d: d["users"][0]["subscriptions"][0].update(name="gold"), "subscriptions[0].name: no plan"),
        (
            lambda d: d["users"][0]["subscriptions"][0].update(expires_at="soon"),
            "users[0]: subscriptions[0].expires_at",
        ),
        (lambda d: d["users"][3].pop("email"), "users[3]: Object missing required field `email`"),
    ],
)
def test_bad_users_are_located(data_dir: Path, change: Callable[[Any], object], expected: str) -> None:
    _edit(data_dir, "users.json", change)
    with pytest.raises(CatalogueError) as caught:
        load(data_dir)
    assert expected in str(caught.value)


def test_all_problems_reported_together(data_dir: Path) -> None:
    _edit(data_dir, "subscriptions.json", lambda d: d["subscriptions"][0].update(price=-1, currency="X"))
    _edit(data_dir, "users.json", lambda d: d["users"][1].update(email="nope"))
    with pytest.raises(CatalogueError) as caught:
        load(data_dir)
    text = str(caught.value)
    assert "price" in text and "currency" in text and "users[1].email" in text


@pytest.mark.parametrize("content", ["", "{", "[]", '{"users": 3}', "\x00\xff"])
def test_unreadable_files_are_errors_not_empty_lists(data_dir: Path, content: str) -> None:
    (data_dir / "users.json").write_text(content)
    with pytest.raises(CatalogueError) as caught:
        load(data_dir)
    assert "users.json" in str(caught.value)


def test_missing_file_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as caught:
        load(tmp_path)
    assert "BILLING_DATA_DIR" in str(caught.value)


def test_find_user_never_guesses_between_several(data_dir: Path) -> None:
    cat = load(data_dir)
    assert cat.find_user("alice").id == "alice"
    assert cat.find_user("BOB@EXAMPLE.COM").id == "bob"
    assert cat.find_user(cat.users[2].party).id == "carol"
    assert cat.find_user("Diaz").id == "carol"
    with pytest.raises(NotFound, match="matches 5 users"):
        cat.find_user("example.com")
    with pytest.raises(NotFound, match="no user matches"):
        cat.find_user("zed")


def test_starts_at_delays_activity(data_dir: Path) -> None:
    _edit(
        data_dir,
        "users.json",
        lambda d: d["users"][0]["subscriptions"][0].update(starts_at="2027-01-01T00:00:00Z"),
    )
    sub = load(data_dir).find_user("alice").subscriptions[0]
    assert not sub.active(NOW)
    assert sub.active(datetime(2027, 1, 2, tzinfo=UTC))
