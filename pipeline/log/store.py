"""The one module that talks to RocksDB (through rocksdict).

A `Store` is a byte-keyed, byte-valued ordered map with atomic batches. It opens as
the single writer (`"write"`), or as a *secondary* reader that follows a running
writer in another process (`"follow"`), which is how read-only commands work while
the daemon runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice, starmap
from operator import itemgetter
from pathlib import Path
from typing import Literal, Self, cast

import rocksdict

from pipeline.errors import StoreBusy, StoreUnavailable

Mode = Literal["write", "follow"]
Pairs = Iterator[tuple[bytes, bytes]]
_value_of = itemgetter(1)

#: Read-ahead for long forward scans (log replays): fewer, larger reads of the SST files.
SCAN_READAHEAD = 2 << 20


class Store:
    """A RocksDB database in raw (bytes) mode."""

    def __init__(self, db: rocksdict.Rdict, path: Path, mode: Mode, scratch: Path | None) -> None:
        self._db = db
        self.path = path
        self.mode = mode
        self._scratch = scratch
        self._writer: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None  # a write behind: every later call waits for it

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mode: Mode = "write", sync: bool = True) -> Self:
        """Open (and create, for writers) the database at ``path``.

        Raises:
            StoreBusy: another process holds the writer lock.
            StoreUnavailable: the directory cannot be used (permissions, disk, corruption).
        """
        target = Path(path)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(mode == "write")
        options.set_compression_type(rocksdict.DBCompressionType.lz4())
        scratch = None
        try:
            if mode == "write":
                _make_private_dir(target)
                db = rocksdict.Rdict(str(target), options)
                write_options = rocksdict.WriteOptions()
                write_options.sync = sync
                db.set_write_options(write_options)
            else:
                if not (target / "CURRENT").exists():
                    raise StoreUnavailable(f"no database at {target}: nothing has been written yet")
                scratch = Path(tempfile.mkdtemp(prefix="billing-follow-"))
                access = rocksdict.AccessType.secondary(str(scratch))
                db = rocksdict.Rdict(str(target), options, access_type=access)
        except StoreUnavailable:
            raise
        except Exception as err:  # rocksdict raises plain Exception with RocksDB's text
            raise _translate(err, target) from err
        return cls(db, target, mode, scratch)

    def get(self, key: bytes) -> bytes | None:
        self.wait()
        value = self._db.get(key)
        assert value is None or isinstance(value, bytes)
        return value

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """The values of ``keys`` (None where missing), in one RocksDB multi-get."""
        self.wait()
        if not keys:
            return []
        # rocksdict's stubs type every mode; in raw mode keys and values are bytes.
        return cast("list[bytes | None]", self._db.get(cast("list[str | int | float | bytes | bool]", keys)))

    def write(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), *, behind: bool = False
    ) -> None:
        """Apply puts and deletes atomically: all of them or none.

        ``behind``: return at once and write in a thread (RocksDB lets go of the GIL while it
        writes, so a replay folds the next chunk meanwhile). Every later call on the store
        waits for that write first, and raises what it raised.
        """
        self.wait()
        if not behind:
            self._write(puts, deletes)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rocks-write")
        self._writing = self._writer.submit(self._write, puts, deletes)

    def wait(self) -> None:
        """Wait for a write behind to finish; raise what it raised."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _write(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        deque(map(batch.delete, deletes), maxlen=0)  # the loops run in C: a projection chunk is a million puts
        deque(starmap(batch.put, puts), maxlen=0)
        try:
            self._db.write(batch)
        except Exception as err:
            raise _translate(err, self.path) from err

    def delete_range(self, start: bytes, end: bytes) -> None:
        """Delete every key in ``[start, end)`` in one atomic operation."""
        self.wait()
        try:
            self._db.delete_range(start, end)
        except Exception as err:
            raise _translate(err, self.path) from err

    def scan(self, start: bytes = b"", end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` in key order from ``start`` (inclusive) to ``end`` (exclusive)."""
        self.wait()
        if end is None:
            yield from self._items(start)  # the hot path of log reads: no bound to check
            return
        for key, value in self._items(start):
            if key >= end:
                return
            yield key, value

    def values(self, start: bytes, end: bytes, most: int) -> list[bytes]:
        """The values of the keys in ``[start, end)``, of which there are at most ``most`` (a range of
        time buckets: one key per bucket). Read in C, 16 at a time: a sparse range reads few past ``end``."""
        self.wait()
        items = self._items(start)
        pairs: list[tuple[bytes, bytes]] = []
        while len(pairs) < most and (chunk := list(islice(items, min(most - len(pairs), 16)))):
            pairs += chunk
            if chunk[-1][0] >= end:
                del pairs[bisect_left(pairs, (end,)) :]
                break
        return list(map(_value_of, pairs))

    def scan_chunks(
        self, start: bytes = b"", end: bytes | None = None, size: int = 1000
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """Like `scan`, in lists of up to ``size`` pairs, for long forward reads (log replays).

        The chunking runs in C, not per pair in Python. The bound is checked here, once per
        chunk (a bisect), not with ``iterate_upper_bound``: rocksdict's iterator does not keep
        the bound alive, and runs past it once the options object is collected (seen in 0.3.29).
        """
        self.wait()
        options = _bulk_read_options()  # this frame keeps the options alive while pairs is in use
        pairs = self._items(start, options)
        while chunk := list(islice(pairs, size)):
            if end is not None and chunk[-1][0] >= end:
                del chunk[bisect_left(chunk, (end,)) :]  # (end,) sorts before every (end, value)
                if chunk:
                    yield chunk
                return
            yield chunk

    def _items(self, start: bytes, options: rocksdict.ReadOptions | None = None) -> Pairs:
        # rocksdict's stubs type every mode; in raw mode keys and values are bytes.
        return cast(Pairs, self._db.items(from_key=start, read_opt=options))

    def last_key(self, start: bytes = b"", end: bytes | None = None) -> bytes | None:
        """The greatest key in ``[start, end)``, or None."""
        self.wait()
        it = self._db.iter()
        if end is None:
            it.seek_to_last()
        else:
            it.seek_for_prev(end)
            if it.valid() and it.key() >= end:
                it.prev()
        if it.valid() and it.key() >= start:
            key = it.key()
            assert isinstance(key, bytes)
            return key
        return None

    def catch_up(self) -> None:
        """For a follower: see what the writer has written since (cheap; call often)."""
        if self.mode == "follow":
            self._db.try_catch_up_with_primary()

    def flush(self) -> None:
        self.wait()
        self._db.flush()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
            self._db.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def _bulk_read_options() -> rocksdict.ReadOptions:
    # A replay reads each block once: read ahead, and leave the block cache to point reads.
    options = rocksdict.ReadOptions()
    options.fill_cache(False)  # type: ignore[call-arg]  # the stub leaves out the flag it takes
    options.set_readahead_size(SCAN_READAHEAD)
    return options


def _make_private_dir(path: Path) -> None:
    # Owner-only permissions: the log holds party ids and amounts.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _translate(err: Exception, path: Path) -> Exception:
    text = str(err)
    if "LOCK" in text and ("lock" in text.lower()):
        return StoreBusy(
            f"{path} is in use by another process (is `billing start` running?). "
            "Read-only commands follow it automatically; send writes through the daemon's API."
        )
    return StoreUnavailable(f"cannot use the database at {path}: {text}")
