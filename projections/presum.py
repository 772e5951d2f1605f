"""The replay's reader: a second process reads the embedded log and sums it, chunk by chunk.

A long catch-up (`projections.replay`) spends half its time reading and decoding the log
and summing outcomes, the other half writing rows. Summing is associative (`Sums`), so the
reading and summing run here, on the other core, while the fold writes the chunk before:

    python -m projections.presum <log dir> <start> <stop> <horizon> <chunk> [<projection dir>]

reads records ``start .. stop-1`` (the log opened as a follower, as read-only commands
do) and writes to stdout one frame per ``chunk`` records: a 4-byte big-endian length and a
msgpack `Partial`. It exits 0 after the last frame; an error goes to stderr, exit 1.
The parent commits each frame with its position, so a crash of either process leaves the
projection at the last chunk committed, from where the next catch-up resumes.

A payment counts once (`pipeline.events.outcome`): the reader remembers every payment it
saw confirmed, and with ``<projection dir>`` (given when earlier commits confirmed some)
also looks them up there, the projection opened as a follower.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from pipeline.log.embedded import EmbeddedLog
from pipeline.log.store import Store
from projections.fold import counted_confirmations
from projections.sums import Partial, Sums

READ = 1000  # records per read
_encode = msgspec.msgpack.encode
partial_decoder = msgspec.msgpack.Decoder(Partial)


async def partials(
    path: Path, start: int, stop: int, horizon: int, chunk: int, projection: Path | None = None
) -> AsyncIterator[Partial]:
    """The sums of records ``start .. stop-1`` of the log at ``path``, one `Partial` per ``chunk`` records."""
    log = EmbeddedLog.open(path, follow=True)
    confirmed: set[str] = set()  # every payment seen confirmed: in this run, or (looked up) before it
    store = Store.open(projection, mode="follow") if projection else None

    def known(ids: list[str]) -> set[str]:
        if store is not None:
            confirmed.update(counted_confirmations(store, ids))
        return confirmed

    sums = Sums(start, horizon, known)
    try:
        async for batch in log.read_batches(start, stop=stop, size=READ, outcomes_only=True):
            sums.apply(batch)
            if sums.pending >= chunk:
                yield _take(sums, confirmed)
        if sums.pending:
            yield _take(sums, confirmed)
    finally:
        await log.close()
        if store is not None:
            store.close()


def _take(sums: Sums, confirmed: set[str]) -> Partial:
    partial = sums.partial()
    confirmed.update(sums.confirmed)
    sums.clear()
    sums.unreadable = 0  # each frame carries its own
    return partial


async def _main(args: list[str]) -> None:
    path, (start, stop, horizon, chunk) = Path(args[0]), map(int, args[1:5])
    projection = Path(args[5]) if len(args) > 5 else None
    out = sys.stdout.buffer
    async for partial in partials(path, start, stop, horizon, chunk, projection):
        frame = _encode(partial)
        out.write(len(frame).to_bytes(4, "big") + frame)
        out.flush()  # the parent folds it while this process reads on


if __name__ == "__main__":
    gc.disable()  # the sums make no cycles (see `replay.collector_paused`)
    try:
        asyncio.run(_main(sys.argv[1:]))
    except BrokenPipeError:
        sys.exit(1)  # the parent stopped reading (it was stopped, or failed): nothing to report
    except Exception as err:  # one line for the parent to show
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
