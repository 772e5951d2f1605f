"""The key layout of the window projection, in one place (the fold, queries and pruning share it).

    c <level> <scope> \\0 <bucket:8>          counters (n, ok, failed, total) of one time bucket
    h u <level> <scope> \\0 <bucket:8>      users (of the scope) last active in that bucket
    l u <party id> / l s <pair id>            a member's last active minute (ids: see `digest`)
    p <party> \\0 <plan>                       the plans a user has had outcomes on
    g <plan>                                  every plan that has had an outcome
    \\0 <name>                                position, horizon, format, pruning progress

Scopes: ``all``, ``plan\\x1f<plan>``, ``P<pair id>``. Buckets are event-time
minutes divided by the level's size, big-endian, so a window is a few range scans.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

# Resolutions and their sizes in minutes. Overall and plan scopes (cheap: few rows, summed in
# memory) also have 10-minute buckets, so the ragged ends of a window cost ≤ 9 + 5 rows, not 59;
# a user+plan pair, written once per outcome, has three levels.
LEVELS = (("m", 1), ("t", 10), ("h", 60), ("d", 1440))
PAIR_LEVELS = (("m", 1), ("h", 60), ("d", 1440))
SIZES = {level.encode(): size for level, size in LEVELS}
SHARED_SIZES = tuple(size for _, size in LEVELS)
PAIR_SIZES = tuple(size for _, size in PAIR_LEVELS)
PLANS_INDEX = b"g"


def digest(text: str) -> bytes:
    """A short fixed-size id for a party or a user+plan pair: keys a third as long, puts twice as fast.

    96 bits: the chance that two of a million pairs share one is about 10^-17.
    """
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


def pair_scope(party: str, plan: str) -> str:
    return "P" + digest(f"{party}\x1f{plan}").hex()


def counter_prefix(level: str, scope: str) -> bytes:
    return b"c" + level.encode() + _scope_bytes(scope) + b"\x00"


def hist_prefix(kind: bytes, level: str, scope: str) -> bytes:
    return b"h" + kind + level.encode() + _scope_bytes(scope) + b"\x00"


def _scope_bytes(scope: str) -> bytes:
    return b"P" + bytes.fromhex(scope[1:]) if scope[:1] == "P" else scope.encode()


def bucket_key(prefix: bytes, bucket: int) -> bytes:
    return prefix + bucket.to_bytes(8, "big")


def plans_prefix(party: str) -> bytes:
    return b"p" + party.encode() + b"\x00"


def level_and_bucket(key: bytes) -> tuple[int, int] | None:
    """(level size in minutes, bucket) of a counter or histogram key; None for other rows."""
    kind = key[:1]
    if kind == b"c":
        return SIZES[key[1:2]], int.from_bytes(key[-8:], "big")
    if kind == b"h":
        return SIZES[key[2:3]], int.from_bytes(key[-8:], "big")
    return None


@dataclass(frozen=True, slots=True)
class PairKeys:
    """Every key prefix one (user, plan) outcome touches, built once per pair."""

    shared_counters: tuple[tuple[bytes, ...], ...]  # overall and plan; each minute, hour, day
    pair_counters: tuple[bytes, ...]
    pair_last: bytes
    pair_hists: tuple[bytes, ...]
    user_last: bytes
    user_hists: tuple[bytes, ...]
    index_rows: tuple[bytes, bytes]  # the plan in the plan index, and under the user

    @classmethod
    def of(cls, party: str, plan: str) -> PairKeys:
        pair = digest(f"{party}\x1f{plan}")
        return cls(
            shared_counters=_shared_counters(plan),
            pair_counters=tuple(b"c" + lv.encode() + b"P" + pair + b"\x00" for lv, _ in PAIR_LEVELS),
            pair_last=b"ls" + pair,
            # a pair active in a window is one more user of that plan (pairs overall: the sum over plans)
            pair_hists=_plan_hists(plan),
            user_last=b"lu" + digest(party),
            user_hists=_plan_hists(None),
            index_rows=(PLANS_INDEX + plan.encode(), plans_prefix(party) + plan.encode()),
        )


@functools.cache
def _shared_counters(plan: str) -> tuple[tuple[bytes, ...], ...]:
    """The overall and the plan's counter prefixes at every level (built once per plan)."""
    return tuple(tuple(counter_prefix(lv, s) for lv, _ in LEVELS) for s in ("all", f"plan\x1f{plan}"))


@functools.cache
def _plan_hists(plan: str | None) -> tuple[bytes, ...]:
    """The histogram prefixes of a plan's scope (None: overall) at every level."""
    return tuple(hist_prefix(b"u", lv, "all" if plan is None else f"plan\x1f{plan}") for lv, _ in LEVELS)
