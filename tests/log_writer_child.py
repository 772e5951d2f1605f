"""Child process for the kill -9 test: append events forever, print each offset once stored."""

from __future__ import annotations

import asyncio
import sys

from pipeline.log.embedded import EmbeddedLog
from tests.log_contract import event


async def main(path: str, sync: bool) -> None:
    log = EmbeddedLog.open(path, sync=sync)
    i = (await log.last_offset() or -1) + 1
    while True:
        offsets = await log.append_batch([event(i), event(i + 1)]) if i % 3 == 0 else [await log.append(event(i))]
        for offset in offsets:
            print(offset, flush=True)
        i = offsets[-1] + 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] == "sync"))
