"""One rule, one place (`pipeline.events.outcome`): its readers agree on which payments count.

The payment book, the window fold's sums and the live payment counters each read the same
records; whatever order requests, retries, final failures and repeated confirmations come in,
each confirmed payment is confirmed once in all three, and nothing after its confirmation counts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import PaymentConfirmed, Recorded, outcome
from pipeline.processor.book import PaymentBook
from projections.payment_outcomes import PaymentOutcomes
from projections.sums import Sums
from tests.test_payment_book import IDS, event_for


def test_a_confirmation_is_final() -> None:
    pid = IDS[0]
    assert outcome(event_for("confirm", pid, 1, 0), confirmed=False) == "confirmed"
    assert outcome(event_for("fail", pid, 1, 0), confirmed=False) == "failed"
    assert outcome(event_for("retry", pid, 1, 0), confirmed=False) == "open"
    for kind in ("request", "submit", "confirm", "retry", "fail"):
        assert outcome(event_for(kind, pid, 1, 0), confirmed=True) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["request", "confirm", "retry", "fail"]), st.sampled_from(IDS)), max_size=30))
def test_book_sums_and_counters_count_each_confirmation_once(steps: list[tuple[str, str]]) -> None:
    first = [event_for("request", pid, 0, IDS.index(pid)) for pid in IDS]
    events = first + [event_for(kind, pid, n + 1, IDS.index(pid)) for n, (kind, pid) in enumerate(steps)]
    book, sums, counters = PaymentBook(), Sums(0, 0), PaymentOutcomes()
    seen = []
    for record in [Recorded(offset, event) for offset, event in enumerate(events)]:
        book.apply(record)
        sums.apply([record])
        seen.append(counters.see(record))
    in_book = {pid for pid in IDS if (state := book.get(pid)) is not None and state.status == "confirmed"}
    counted = [found[0].payment_id for found in seen if found and isinstance(found[0], PaymentConfirmed)]
    assert in_book == set(sums.confirmed) == set(counted)
    assert len(counted) == len(in_book) == sum(row[1] for row in sums.days.values())
