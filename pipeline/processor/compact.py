"""Compact containers for the payment book: memory per entry in bytes, not in Python objects.

A book folded from a long log holds every confirmed payment id and every requested period
index ever. As Python objects (a str, an int, a slot in a set or dict) each costs 100-200
bytes; here a confirmed payment costs ~16 bytes of id plus its packed update id, and a run
of consecutive period indices costs 16 bytes whatever its length.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Set
from itertools import accumulate, islice
from operator import add

_KEY = 16  # a canonical payment id is 32 lowercase hex digits: 16 raw bytes
_HEX, _TEXT = b"\x00", b"\x01"  # how an update id was packed


def _key(payment_id: str) -> bytes | None:
    """The 16 raw bytes of a canonical payment id; None for any other spelling (kept as text)."""
    if len(payment_id) != 2 * _KEY:
        return None
    try:
        raw = bytes.fromhex(payment_id)
    except ValueError:
        return None
    # Reversed: the last bytes lead, so ids that share a prefix (counters, not hashes) still
    # spread over the prefix buckets of `SettledIds`.
    return raw[::-1] if raw.hex() == payment_id else None  # "AB.." and "ab.." stay two ids


def _pack(update_id: str) -> bytes:
    try:
        raw = bytes.fromhex(update_id)
    except ValueError:
        return _TEXT + update_id.encode()
    return _HEX + raw if raw.hex() == update_id else _TEXT + update_id.encode()


def _unpack(packed: bytes) -> str:
    return packed[1:].hex() if packed[:1] == _HEX else packed[1:].decode()


class SettledIds:
    """payment_id -> update_id for confirmed payments; add-only (a confirmation is final).

    New entries go to a small dict; when it outgrows an eighth of the rest it is merged into
    one sorted run: the keys in one bytes object, the packed update ids in another with their
    lengths in a byte array (and the offset of every 64th), and the first index of every
    2-byte key prefix, so that a look-up is a few array reads and one ``bytes.find`` over a
    handful of keys. A merge copies the run in slices between the new keys (in C), so its
    Python work is per new key, not per key kept.
    """

    __slots__ = ("_every64", "_fresh", "_keys", "_lens", "_other", "_starts", "_values")

    def __init__(self) -> None:
        self._keys = b""
        self._values = b""
        self._lens = array("B")
        self._every64 = array("I", [0])
        self._starts = array("I", bytes(4 * 65537))
        self._fresh: dict[bytes, bytes] = {}
        self._other: dict[str, str] = {}  # ids not 32 hex digits, update ids over 254 bytes

    def __len__(self) -> int:
        return len(self._lens) + len(self._fresh) + len(self._other)

    def add(self, payment_id: str, update_id: str, *, new: bool = False) -> None:
        """Remember a confirmation; the first one stays (``new``: the caller knows it is the first)."""
        key, packed = _key(payment_id), _pack(update_id)
        if key is None or len(packed) > 255:
            if new or self.get(payment_id) is None:
                self._other[payment_id] = update_id
            return
        if not new and (key in self._fresh or self._find(key) >= 0):
            return
        self._fresh[key] = packed
        if len(self._fresh) > max(1024, len(self._lens) // 8):
            self._merge()

    def get(self, payment_id: str) -> str | None:
        """The update id of a confirmed payment, None if it is not confirmed."""
        key = _key(payment_id)
        packed = None if key is None else self._fresh.get(key)
        if key is not None and packed is None and (i := self._find(key)) >= 0:
            start = self._offset(i)
            packed = self._values[start : start + self._lens[i]]
        return self._other.get(payment_id) if packed is None else _unpack(packed)

    def _offset(self, i: int) -> int:
        """Where entry ``i``'s value starts (``i`` may be the length: the end)."""
        return self._every64[i >> 6] + sum(self._lens[i & ~63 : i])

    def _find(self, key: bytes) -> int:
        prefix = key[0] << 8 | key[1]
        lo, hi = self._starts[prefix], self._starts[prefix + 1]
        if hi - lo > 64:  # a crowded bucket (ids that are not hashes): binary search
            i = bisect_left(_Keys(self._keys), key, lo, hi)
            return i if i < hi and self._keys[i * _KEY : (i + 1) * _KEY] == key else -1
        at = self._keys.find(key, lo * _KEY, hi * _KEY)
        while at >= 0 and at % _KEY:  # a match across two keys: look further
            at = self._keys.find(key, at + 1, hi * _KEY)
        return at // _KEY if at >= 0 else -1

    def _merge(self) -> None:
        keys, values, lens = bytearray(), bytearray(), array("B")
        counts = [0] * 65536
        old, done, done_at = _Keys(self._keys), 0, 0  # old entries copied so far, and their values' end
        for key, packed in sorted(self._fresh.items()):
            prefix = key[0] << 8 | key[1]
            upto = bisect_left(old, key, self._starts[prefix], self._starts[prefix + 1])
            upto_at = self._offset(upto)
            keys += self._keys[done * _KEY : upto * _KEY]
            values += self._values[done_at:upto_at]
            lens += self._lens[done:upto]
            keys += key
            values += packed
            lens.append(len(packed))
            counts[prefix] += 1
            done, done_at = upto, upto_at
        keys += self._keys[done * _KEY :]
        values += self._values[done_at:]
        lens += self._lens[done:]
        self._starts = array("I", map(add, self._starts, accumulate(counts, initial=0)))
        self._every64 = array("I", islice(accumulate(lens, initial=0), 0, None, 64))
        self._keys, self._values, self._lens, self._fresh = bytes(keys), bytes(values), lens, {}


class _Keys:
    """The sorted run of keys as a sequence, for `bisect` (all it needs is a length and indexing)."""

    __slots__ = ("_blob",)

    def __init__(self, blob: bytes) -> None:
        self._blob = blob

    def __len__(self) -> int:
        return len(self._blob) // _KEY

    def __getitem__(self, i: int) -> bytes:
        return self._blob[i * _KEY : (i + 1) * _KEY]


class IndexSet(Set[int]):
    """A set of non-negative ints kept as sorted runs ``[start, end)``: billing periods are
    requested almost contiguously, so a subscription's whole history is a run or a few."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, items: Iterable[int] = ()) -> None:
        self._starts = array("q")
        self._ends = array("q")
        for item in items:
            self.add(item)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int):
            return False
        i = bisect_right(self._starts, item) - 1
        return i >= 0 and item < self._ends[i]

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield from range(start, end)

    def __len__(self) -> int:
        return sum(self._ends) - sum(self._starts)

    def __repr__(self) -> str:
        return f"IndexSet({[(s, e) for s, e in zip(self._starts, self._ends, strict=True)]})"

    def first(self) -> int | None:
        """The smallest index (``min`` without walking every run)."""
        return self._starts[0] if self._starts else None

    def add(self, item: int) -> None:
        starts, ends = self._starts, self._ends
        i = bisect_right(starts, item) - 1
        if i >= 0 and item < ends[i]:
            return
        joins_left = i >= 0 and ends[i] == item
        joins_right = i + 1 < len(starts) and starts[i + 1] == item + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif joins_left:
            ends[i] = item + 1
        elif joins_right:
            starts[i + 1] = item
        else:
            starts.insert(i + 1, item)
            ends.insert(i + 1, item + 1)
