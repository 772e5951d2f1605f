"""The key layout of the window projection, in one place (the fold, queries and pruning share it).

    c <level> <scope> \\0 <bucket:8>   overall and plan rows: (n, ok, failed, total, members)
                                       of one time bucket; members: users (overall) or user+plan
                                       pairs (plan) whose last active minute lies in that bucket
    d <pair id> <day:8>                one user+plan pair's day: (n, ok, failed, total), then
                                       (minute of the day, n, ok, failed, total) per active minute
    l u <party id> / l s <pair id>     a member's last active minute (ids: see `digest`)
    k <payment id>                     a payment whose confirmation was counted: the minute it was
                                       counted at (nothing later of that payment counts again)
    p <party> \\0 <plan>                the plans a user has had outcomes on
    g <plan>                           every plan that has had an outcome
    \\0 <name>                         position, horizon, format, pruning progress

Scopes: ``all``, ``plan\\x1f<plan>``. Buckets are event-time minutes divided by the level's
size, big-endian, so a window is a few range scans. A pair, written once per outcome, has
one row per active day (its minutes inside it), not a row per minute, hour and day: a
replay writes a third of the rows, and a window of a pair reads at most 31 of them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

# Resolutions of the overall and plan scopes and their sizes in minutes. The 10-minute
# buckets keep the ragged ends of a window to ≤ 9 + 5 rows, not 59.
LEVELS = (("m", 1), ("t", 10), ("h", 60), ("d", 1440))
SIZES = {level.encode(): size for level, size in LEVELS}
SHARED_SIZES = tuple(size for _, size in LEVELS)
DAY = 1440  # minutes: a pair's rows are days
PLANS_INDEX = b"g"
PAIR_DAYS = b"d"
CONFIRMED = b"k"
CONFIRMED_END = b"l"  # the first key past every confirmed payment id
_DIGEST = 12


def digest(text: str) -> bytes:
    """A short fixed-size id for a party or a user+plan pair: shorter keys, cheaper writes.

    96 bits: the chance that two of a million pairs share one is about 10^-17.
    """
    return hashlib.blake2b(text.encode(), digest_size=_DIGEST).digest()


def pair_days_prefix(party: str, plan: str) -> bytes:
    return PAIR_DAYS + digest(f"{party}\x1f{plan}")


def confirmed_key(payment_id: str) -> bytes:
    return CONFIRMED + payment_id.encode()


def counter_prefix(level: str, scope: str) -> bytes:
    return b"c" + level.encode() + scope.encode() + b"\x00"


def bucket_key(prefix: bytes, bucket: int) -> bytes:
    return prefix + bucket.to_bytes(8, "big")


def plans_prefix(party: str) -> bytes:
    return b"p" + party.encode() + b"\x00"


def level_and_bucket(key: bytes) -> tuple[int, int] | None:
    """(level size in minutes, bucket) of a time-bucket row (overall, plan or pair); None for other rows."""
    kind = key[:1]
    if kind == b"c":
        return SIZES[key[1:2]], int.from_bytes(key[-8:], "big")
    if kind == PAIR_DAYS and len(key) == 1 + _DIGEST + 8:
        return DAY, int.from_bytes(key[-8:], "big")
    return None


@dataclass(frozen=True, slots=True)
class PairKeys:
    """Every key prefix one (user, plan) outcome touches, built once per pair."""

    plan: str
    shared_counters: tuple[tuple[bytes, ...], tuple[bytes, ...]]  # overall and plan; every level
    pair_days: bytes
    pair_last: bytes
    user_last: bytes
    index_rows: tuple[bytes, bytes]  # the plan in the plan index, and under the user

    @classmethod
    def of(cls, party: str, plan: str) -> PairKeys:
        pair = digest(f"{party}\x1f{plan}")
        return cls(
            plan=plan,
            shared_counters=_shared_counters(plan),
            pair_days=PAIR_DAYS + pair,
            pair_last=b"ls" + pair,
            user_last=b"lu" + digest(party),
            index_rows=(PLANS_INDEX + plan.encode(), plans_prefix(party) + plan.encode()),
        )


@functools.cache
def _shared_counters(plan: str) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The overall and the plan's row prefixes at every level (built once per plan)."""
    overall, of_plan = (tuple(counter_prefix(lv, s) for lv, _ in LEVELS) for s in ("all", f"plan\x1f{plan}"))
    return overall, of_plan
