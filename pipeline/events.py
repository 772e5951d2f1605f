"""The event contract: what the billing log records, and its one codec.

Events are frozen msgspec Structs with explicit wire tags. Schema evolution follows
msgspec's rules: new fields get defaults; no field or tag is ever renamed or retyped.
Money is Decimal (Canton Numeric 10); times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from operator import attrgetter
from typing import Annotated, Final, Literal

import msgspec

#: Written into every envelope. Bump it when a change needs an upcaster at decode time.
SCHEMA_VERSION: Final = 1

RequestReason = Literal["scheduled", "manual", "recovery", "retry"]

#: A point in time with its zone. Naive times (JSON without an offset) are refused at decode:
#: compared with an aware clock they would raise inside a fold, far from the bad record.
Time = Annotated[datetime, msgspec.Meta(tz=True)]


class Period(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Billing period ``index`` of a subscription: ``[start, end)``."""

    index: int
    start: Time
    end: Time


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every event. ``at`` is the event time (when it happened, UTC).

    ``gc=False``: events hold only strings, numbers and times, never cycles, so the garbage
    collector need not track them (a replay decodes millions).
    """

    payment_id: str
    at: Time


class PaymentRequested(Event, tag="payment.requested", frozen=True):
    """The command side asks for one period of one subscription to be charged."""

    party: str
    user_id: str
    plan: str
    period: Period
    amount: Decimal
    receiver: str
    description: str
    reason: RequestReason = "scheduled"
    currency: str = "CC"


class PaymentSubmitted(Event, tag="payment.submitted", frozen=True):
    """Recorded by the processor *before* each submission attempt."""

    command_id: str
    submission_id: str
    attempt: int
    ledger_offset_before: int


class PaymentConfirmed(Event, tag="payment.confirmed", frozen=True):
    """The transfer is on the ledger and was verified. Carries what folds need."""

    party: str
    plan: str
    amount: Decimal
    update_id: str
    completion_offset: int | None = None
    round: int | None = None
    verified_by: Literal["scan", "ledger"] = "scan"


class PaymentFailed(Event, tag="payment.failed", frozen=True):
    """An attempt failed. ``final`` means no further attempt will be made."""

    party: str
    plan: str
    amount: Decimal
    attempt: int
    code: str
    message: str
    retryable: bool
    final: bool
    error_id: str | None = None
    next_attempt_at: Time | None = None

    @property
    def reason(self) -> str:
        """The failure in one line, naming the code once: a Canton error's message already
        starts with it ("Ledger API: DAML_FAILURE: ..."), ours do not ("holdings of ...")."""
        return self.message if self.code in self.message else f"{self.code}: {self.message}"


AnyEvent = PaymentRequested | PaymentSubmitted | PaymentConfirmed | PaymentFailed
#: What an event makes of its payment: still open, or one of the two final outcomes.
Outcome = Literal["open", "confirmed", "failed"]


def outcome(event: AnyEvent, *, confirmed: bool) -> Outcome | None:
    """What ``event`` makes of its payment, ``confirmed`` or not before it: the one place of this rule.

    A confirmation is final: after it, nothing recorded for the payment counts (None), be it a
    duplicate request, a stale worker's submission or failure, or a second confirmation (two Kafka
    workers can both record one; counted twice, its amount would be summed twice). Otherwise a
    confirmation confirms, a final failure fails, and anything else leaves the payment open.
    """
    if confirmed:
        return None
    if isinstance(event, PaymentConfirmed):
        return "confirmed"
    if isinstance(event, PaymentFailed) and event.final:
        return "failed"
    return "open"


MESSAGE_LIMIT: Final = 500
#: Canton Numeric 38,10 holds less than 10^28; anything beyond is not an amount (and overflows sums).
AMOUNT_LIMIT: Final = Decimal("1e28")
_ZERO: Final = Decimal(0)


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What one log record holds. The log's own position is not part of it."""

    v: int = SCHEMA_VERSION
    event: AnyEvent


class Unreadable(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A record that could not be decoded: kept aside with its reason, never fatal."""

    reason: str
    raw: bytes


class Skipped(msgspec.Struct, frozen=True, tag_field="type", gc=False):
    """A request or a submission, read by a reader that asked for outcomes only: its fields are
    not decoded (nor checked). The window fold reads the log this way: most records are not outcomes."""


class _SkippedRequest(Skipped, tag="payment.requested", frozen=True):
    pass


class _SkippedSubmission(Skipped, tag="payment.submitted", frozen=True):
    pass


class _OutcomeEnvelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`Envelope` as an outcomes-only reader sees it: outcomes whole, the other events skipped."""

    v: int = SCHEMA_VERSION
    event: PaymentConfirmed | PaymentFailed | _SkippedRequest | _SkippedSubmission


class Recorded(msgspec.Struct, frozen=True, gc=False):
    """An event (or an unreadable record) at its position in the log."""

    offset: int
    event: AnyEvent | Unreadable | Skipped
    partition: int = 0


_encoder: Final = msgspec.msgpack.Encoder(decimal_format="string")
_decoder: Final = msgspec.msgpack.Decoder(Envelope)
_json_encoder: Final = msgspec.json.Encoder(decimal_format="string")
_json_decoder: Final = msgspec.json.Decoder(Envelope)
_outcome_decoders: Final = (msgspec.msgpack.Decoder(_OutcomeEnvelope), msgspec.json.Decoder(_OutcomeEnvelope))
_event_of: Final = attrgetter("event")
#: What decoding a record that is not an event raises: msgspec's errors, and a bad UTF-8
#: sequence inside a string (raised as UnicodeDecodeError, not as msgspec's DecodeError).
_NOT_AN_EVENT: Final = (msgspec.DecodeError, UnicodeDecodeError)
_TEXT_LIMIT: Final = 240


def encode(event: AnyEvent) -> bytes:
    """Encode one event as the bytes of a log record (msgpack envelope)."""
    return _encoder.encode(Envelope(event=event))


def decode(raw: bytes, *, outcomes_only: bool = False) -> AnyEvent | Unreadable | Skipped:
    """Decode a log record; anything that is not a valid event comes back as Unreadable.

    JSON records are accepted too, so any producer that writes the documented
    schema (e.g. a Kafka client in another language) is understood. ``outcomes_only``:
    a request or a submission comes back `Skipped`, its fields neither decoded nor checked.
    """
    json = raw[:1] == b"{"
    try:
        envelope = (_outcome_decoders[json] if outcomes_only else _json_decoder if json else _decoder).decode(raw)
    except _NOT_AN_EVENT as err:
        return Unreadable(reason=_explain(err, raw), raw=raw)
    # A newer schema version only adds fields with defaults, which msgspec skips:
    # what we did read is still right, so the event is used as it is.
    event = envelope.event
    amount = getattr(event, "amount", _ZERO)
    if not (amount.is_finite() and _ZERO <= amount < AMOUNT_LIMIT):
        reason = _one_line(f"not a billing event: amount {amount} must be finite, ≥ 0 and < 10^28")
        return Unreadable(reason=reason, raw=raw)
    return event


def decode_all(raws: Sequence[bytes], first_offset: int = 0) -> list[AnyEvent | Unreadable]:
    """`decode_at` for consecutive records from ``first_offset``: the hot path of replays.

    When every record is a msgpack envelope (the usual case) the loop runs in C; the
    first one that is not sends the whole list through `decode_at`, one by one.
    """
    return _decode_many(raws, first_offset, outcomes_only=False)  # type: ignore[return-value]


def decode_outcomes(raws: Sequence[bytes], first_offset: int = 0) -> list[AnyEvent | Unreadable | Skipped]:
    """`decode_all` for a reader that needs only outcomes: a request or a submission comes back
    `Skipped`, undecoded. Outcomes are decoded and checked exactly as `decode_all` does."""
    return _decode_many(raws, first_offset, outcomes_only=True)


def _decode_many(
    raws: Sequence[bytes], first_offset: int, *, outcomes_only: bool
) -> list[AnyEvent | Unreadable | Skipped]:
    try:
        decoder = _outcome_decoders[0] if outcomes_only else _decoder
        events = list(map(_event_of, map(decoder.decode, raws)))
        if _amounts_are_sane(events):
            return events
    except (*_NOT_AN_EVENT, ArithmeticError):  # ArithmeticError: a NaN amount, compared
        pass
    return [decode_at(raw, offset, outcomes_only=outcomes_only) for offset, raw in enumerate(raws, first_offset)]


def _amounts_are_sane(events: list[AnyEvent | Skipped]) -> bool:
    """Every amount finite, not negative and below 10^28, checked in C (min/max, not a loop).

    A NaN or infinite amount would raise, and a huge one overflow, inside the folds.
    """
    amounts = list(map(getattr, events, repeat("amount"), repeat(_ZERO)))
    finite = all(map(Decimal.is_finite, amounts))
    return finite and min(amounts, default=_ZERO) >= _ZERO and max(amounts, default=_ZERO) < AMOUNT_LIMIT


def decode_at(raw: bytes, offset: int, *, outcomes_only: bool = False) -> AnyEvent | Unreadable | Skipped:
    """`decode` for the record at ``offset``; an Unreadable's reason names the offset."""
    event = decode(raw, outcomes_only=outcomes_only)
    if isinstance(event, Unreadable):
        return Unreadable(reason=f"record at offset {offset}: {event.reason}", raw=raw)
    return event


def encode_json(event: AnyEvent) -> bytes:
    """The JSON form of a record, for people and for producers in other languages."""
    return _json_encoder.encode(Envelope(event=event))


def to_builtins(event: AnyEvent) -> dict[str, object]:
    """A plain dict of an event (for ``--json`` output and the audit stream)."""
    out = msgspec.to_builtins(event)  # Decimal -> str, datetime -> RFC 3339
    assert isinstance(out, dict)
    return out


class _Version(msgspec.Struct, gc=False):
    v: int = SCHEMA_VERSION


_version_decoders: Final = (msgspec.msgpack.Decoder(_Version), msgspec.json.Decoder(_Version))


def _explain(err: Exception, raw: bytes) -> str:
    text = _one_line(str(err))
    newer = _newer_version(raw)
    if newer is not None:
        return f"written by schema version {newer} (this reader knows {SCHEMA_VERSION}): {text}; upgrade the reader"
    if "Invalid value" in text and "`$.event.type`" in text:
        return f"unknown event type ({text}); written by a newer version or another producer?"
    return f"not a billing event: {text}"


def _one_line(text: str) -> str:
    """msgspec quotes the offending value, which may be huge or hold line breaks: keep it short."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _TEXT_LIMIT else f"{text[: _TEXT_LIMIT // 2]}…{text[-_TEXT_LIMIT // 4 :]}"


def _newer_version(raw: bytes) -> int | None:
    """The envelope's schema version when it is newer than ours."""
    try:
        version = _version_decoders[raw[:1] == b"{"].decode(raw).v
    except _NOT_AN_EVENT:
        return None
    return version if version > SCHEMA_VERSION else None
