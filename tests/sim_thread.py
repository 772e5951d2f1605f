"""The simulator in this process, served over TCP from a thread of its own, for tests that run
`billing` as real processes yet must reach into the simulator: restart only its listener (its
ledger survives), inject a fault for the next request, count the transfers it committed."""

from __future__ import annotations

import asyncio
import io
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pipeline.simulator.app import Simulator
from pipeline.simulator.serve import serve_async

T = TypeVar("T")


class Listener:
    """The simulator's HTTP listener on a fixed port, on a thread of its own; stop and start it."""

    def __init__(self, sim: Simulator, port: int) -> None:
        self.sim, self.port = sim, port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self) -> None:
        async def go() -> None:
            ready, self.stopping = asyncio.Event(), asyncio.Event()
            self.task = asyncio.create_task(
                serve_async(
                    self.sim,
                    "127.0.0.1",
                    self.port,
                    out=io.StringIO(),
                    on_ready=lambda _: ready.set(),
                    stop=self.stopping,
                )
            )
            await asyncio.wait_for(ready.wait(), 10)

        self._run(go())

    def stop(self) -> None:
        async def go() -> None:
            assert self.task is not None
            self.stopping.set()  # uvicorn's own shutdown: the socket is closed before it returns
            await self.task

        self._run(go())

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the simulator's own thread (the simulator is not thread-safe)."""

        async def go() -> T:
            return fn()

        return self._run(go())

    def senders(self) -> Counter[str]:
        async def go() -> Counter[str]:
            return Counter(t.sender for t in self.sim.transfers())

        return self._run(go())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
