"""Child process for the stop-loudly test: `billing …` whose Canton transport raises a plain
RuntimeError (a bug, not a classified failure) right after the first submission reached the
ledger and was answered: the transfer is committed, the processor never hears of it."""

from __future__ import annotations

import sys

import httpx

from commands.cli.main import main
from pipeline.asgi_server import install_fast_loop

SUBMIT = "/v2/commands/submit-and-wait"


class LoseFirstSubmitAnswer(httpx.AsyncBaseTransport):
    """The real network, except that the first submission's answer turns into a RuntimeError."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.tripped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.tripped and request.url.path.endswith(SUBMIT):
            self.tripped = True
            await response.aread()  # the ledger committed and answered; the answer is lost here
            await response.aclose()
            raise RuntimeError("injected bug: the answer to a submission was lost")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


if __name__ == "__main__":
    install_fast_loop()
    sys.exit(main(sys.argv[1:], transport=LoseFirstSubmitAnswer()))
