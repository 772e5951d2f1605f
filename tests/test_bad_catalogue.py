"""Bad users.json / subscriptions.json, generated: every one is a located CatalogueError.

Hypothesis mutates the sample files (a field replaced by any JSON value, a field removed,
an entry replaced, the whole document replaced, raw bytes) and checks that loading either
succeeds with every entry kept, or fails with a CatalogueError naming the file; never
another exception, and never a catalogue that breaks when it is used.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.catalogue import PLANS_FILE, USERS_FILE, Catalogue, load
from commands.errors import CatalogueError
from commands.services.schedule import current_requests
from tests.bad_inputs import tried

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = {name: json.loads((ROOT / "data" / name).read_text()) for name in (USERS_FILE, PLANS_FILE)}
KEY = {USERS_FILE: "users", PLANS_FILE: "subscriptions"}
USER_FIELDS = ["id", "party", "name", "email", "subscriptions"]
PLAN_FIELDS = ["id", "name", "price", "currency", "interval_sec", "description"]
SUB_FIELDS = ["name", "expires_at", "starts_at"]
WHEN = [datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC)]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            "²",
            "٣٠٠",
            "9" * 5000,
            "1e999999",
            "NaN",
            "-0",
            "0.00000000001",
            "300 ",
            "9999-12-31",
            "0001-01-01",
            "2026-13-01",
            "2026-01-01T00:00:00",
            "::",
            "a::",
            "@",
            "2030-01-01T00:00:00+23:59",
            "\x00",
            "1E+30",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _check(folder: Path) -> None:
    """Load: a usable catalogue with every entry, or a CatalogueError that names the file."""
    try:
        cat = load(folder)
    except CatalogueError as err:
        text = str(err)
        assert USERS_FILE in text or PLANS_FILE in text, text
        assert "Traceback" not in text
        return
    assert isinstance(cat, Catalogue)
    on_disk = {name: json.loads((folder / name).read_text()) for name in (USERS_FILE, PLANS_FILE)}
    assert len(cat.users) == len(on_disk[USERS_FILE]["users"]), "an entry vanished silently"
    assert len(cat.plans) == len(on_disk[PLANS_FILE]["subscriptions"]), "an entry vanished silently"
    for now in WHEN:  # a catalogue that loads must also work at any time
        for _, sub, plan in cat.active_pairs(now):
            assert plan.interval > 0 and sub.ends_at > now
    now = WHEN[1]
    for request in current_requests(cat.active_pairs(now), {}, now, app_party="app::1220ab"):
        assert request.period.start <= now < request.period.end


def _write(folder: Path, docs: dict[str, Any]) -> None:
    folder.mkdir(exist_ok=True)
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc))


def _docs() -> dict[str, Any]:
    docs = json.loads(json.dumps(SAMPLE))
    assert isinstance(docs, dict)
    return docs


FILE_ENTRY = st.sampled_from([(USERS_FILE, 0), (USERS_FILE, 3), (PLANS_FILE, 0), (PLANS_FILE, 2)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=FILE_ENTRY, field=st.sampled_from(USER_FIELDS + PLAN_FIELDS), value=json_values)
def test_any_value_in_any_field(tmp_path: Path, where: tuple[str, int], field: str, value: Any) -> None:
    name, index = where
    docs = _docs()
    docs[name][KEY[name]][index][field] = value
    _write(tmp_path, docs)
    tried(name)
    _check(tmp_path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.integers(0, 3), field=st.sampled_from(SUB_FIELDS), value=json_values | st.datetimes().map(str))
def test_any_value_in_a_users_subscription(tmp_path: Path, user: int, field: str, value: Any) -> None:
    docs = _docs()
    docs[USERS_FILE]["users"][user]["subscriptions"][0][field] = value
    _write(tmp_path, docs)
    tried(USERS_FILE)
    _check(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=FILE_ENTRY,
    drop=st.lists(st.sampled_from(USER_FIELDS + PLAN_FIELDS), max_size=3),
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    entry=st.none() | json_values,
)
def test_fields_removed_added_or_entry_replaced(
    tmp_path: Path, where: tuple[str, int], drop: list[str], extra: dict[str, Any], entry: Any
) -> None:
    name, index = where
    docs = _docs()
    entries = docs[name][KEY[name]]
    for field in drop:
        entries[index].pop(field, None)
    entries[index].update(extra)
    if entry is not None:
        entries[index] = entry
    _write(tmp_path, docs)
    tried(name)
    _check(tmp_path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([USERS_FILE, PLANS_FILE]), doc=json_values, raw=st.none() | st.binary(max_size=64))
def test_any_document_or_bytes(tmp_path: Path, name: str, doc: Any, raw: bytes | None) -> None:
    docs = _docs()
    docs[name] = doc
    _write(tmp_path, docs)
    if raw is not None:
        (tmp_path / name).write_bytes(raw)
    tried(name)
    try:
        load(tmp_path)
    except CatalogueError as err:
        assert name in str(err)


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        (PLANS_FILE, {"interval_sec": "²"}, "subscriptions[0].interval_sec: must be a string of whole seconds"),
        (PLANS_FILE, {"interval_sec": "9" * 5000}, "subscriptions[0].interval_sec: must be a string of whole"),
        (PLANS_FILE, {"price": "1e999999"}, "subscriptions[0].price: at most 28 digits before the point"),
        (PLANS_FILE, {"price": "NaN"}, "subscriptions[0].price: must be greater than 0"),
        (PLANS_FILE, {"name": ""}, "subscriptions[0].name: must not be empty"),
        (USERS_FILE, {"party": "::"}, "users[0].party: must be a party id"),
        (USERS_FILE, {"party": "alice:: x"}, "users[0].party: must be a party id"),
        (USERS_FILE, {"id": " "}, "users[0].id: must not be empty"),
    ],
)
def test_found_by_the_properties(data_dir: Path, file: str, change: dict[str, str], expected: str) -> None:
    docs = _docs()
    docs[file][KEY[file]][0].update(change)
    _write(data_dir, docs)
    tried(file)
    with pytest.raises(CatalogueError, match="invalid catalogue") as caught:
        load(data_dir)
    assert expected in str(caught.value)


def test_the_last_day_of_the_calendar_is_a_valid_expiry(data_dir: Path) -> None:
    docs = _docs()
    docs[USERS_FILE]["users"][0]["subscriptions"][0]["expires_at"] = "9999-12-31"
    _write(data_dir, docs)
    cat = load(data_dir)
    assert cat.users[0].subscriptions[0].active(datetime(9999, 12, 31, 23, tzinfo=UTC))
