"""Bad event-log records, one per way a record can be wrong: shared by the decoding tests and the
tests of a real log with poison records in it."""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.events import encode, to_builtins
from tests.log_contract import event

ENTRY = "event log records"
GOOD = encode(event(1))
FIELDS: dict[str, Any] = to_builtins(event(1))  # plain msgpack values, nested ones too
REASON_LIMIT = 400  # a reason is one readable line, not a dump of the record


def record(v: Any = 1, **changes: Any) -> bytes:
    """A msgpack envelope of event(1) with some fields changed (None removes a field)."""
    fields = {k: v for k, v in {**FIELDS, **changes}.items() if v is not None}
    return msgspec.msgpack.encode({"v": v, "event": fields})


def json_record(**changes: Any) -> bytes:
    return msgspec.json.encode({"v": 1, "event": {**FIELDS, **changes}})


BAD: list[tuple[str, bytes, str]] = [
    ("empty record", b"", "truncated"),
    ("a byte msgpack never uses", b"\xc1", "not a billing event"),
    ("plain text", b"hello, world", "not a billing event"),
    ("foreign JSON object", b'{"hello": "world"}', "not a billing event"),
    ("JSON cut short", b'{"v":1,"event":', "not a billing event"),
    ("msgpack cut short", GOOD[: len(GOOD) // 2], "truncated"),
    ("msgpack missing its last byte", GOOD[:-1], "truncated"),
    ("trailing bytes after a record", GOOD + b"\x00", "not a billing event"),
    ("envelope is a list", msgspec.msgpack.encode([1, FIELDS]), "Expected `object`"),
    ("event is null", msgspec.msgpack.encode({"v": 1, "event": None}), "not a billing event"),
    ("no event at all", msgspec.msgpack.encode({"v": 1}), "missing required field `event`"),
    ("unknown event type", record(type="payment.refunded"), "unknown event type"),
    ("future version, unknown type", record(v=2, type="payment.refunded"), "schema version 2"),
    ("future version, retyped field", record(v=7, amount={"value": "2.5"}), "schema version 7"),
    ("amount is a bool", record(amount=True), "$.event.amount"),
    ("payment_id is a number", record(payment_id=3), "$.event.payment_id"),
    ("period index is text", record(period={**FIELDS["period"], "index": "one"}), "$.event.period.index"),
    ("time is a number in JSON", json_record(at=12), "$.event.at"),
    ("time without a zone", json_record(at="2026-11-24T00:00:00"), "timezone"),
    ("reason outside its values", record(reason="sometimes"), "$.event.reason"),
    ("required field missing", record(party=None), "missing required field `party`"),
    ("amount NaN", record(amount="NaN"), "amount NaN"),
    ("amount signalling NaN", record(amount="sNaN"), "amount sNaN"),
    ("amount infinite", record(amount="-Infinity"), "amount -Infinity"),
    ("amount negative", record(amount="-2.5"), "amount -2.5"),
    ("amount beyond Canton's range", record(amount="1e30"), "amount 1E+30"),
    ("amount exponent overflowing", record(amount="1e999999999"), "amount"),
    ("huge integer in JSON", json_record().replace(b'"index":1', b'"index":' + b"9" * 5000), "out of range"),
    ("array header claiming 4 G items", b"\xdd\xff\xff\xff\xff", "not a billing event"),
    ("deeply nested arrays", b"\x91" * 100_000 + b"\x00", "not a billing event"),
    ("deeply nested JSON", b'{"v":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not a billing event"),
    ("huge unknown tag", record(type="x" * 1_000_000), "unknown event type"),
    ("huge bad literal with newlines", record(reason="a\nb" * 300_000), "$.event.reason"),
]
