"""The Canton HTTP layer: bearer auth (static token, OAuth2 client credentials), read retries, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline.canton.auth import ClientCredentials, StaticToken, TokenGrant, refresh_at
from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.http import Http, ReadRetry, client_credentials, make_client
from pipeline.simulator.app import Simulator
from pipeline.simulator.clock import ManualClock
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    clock_fixture,
    new_sim,
    open_clients,
    sim_fixture,
)

# --- bearer auth --------------------------------------------------------------------------------


def oauth(sim: Simulator, secret: str = "billing-secret") -> object:
    return lambda http: client_credentials(
        http,
        "http://sim.test/oauth/token",
        "billing",
        secret,
        audience="https://canton.network.global",
        clock=sim.clock,
    )


async def test_oauth_token_is_cached_then_refreshed_shortly_before_it_expires(
    clock: ManualClock,
) -> None:
    sim = new_sim(clock, token_lifetime=timedelta(minutes=10))
    async with open_clients(sim, auth=oauth(sim)) as c:  # type: ignore[arg-type]
        await c.ledger.ledger_end()
        await c.ledger.ledger_end()
        source = c.ledger.http.auth
        assert isinstance(source, ClientCredentials) and source.fetches == 1
        clock.advance(timedelta(minutes=9, seconds=40))  # inside the 30 s margin
        await c.ledger.ledger_end()
        assert source.fetches == 2
    assert sim.requests["token"] == 2


async def test_a_401_fetches_a_new_token_and_repeats_the_request_once(sim: Simulator) -> None:
    async with open_clients(sim, auth=oauth(sim)) as c:  # type: ignore[arg-type]
        await c.ledger.ledger_end()
        sim.revoke_tokens()  # the IdP rotated its keys: our cached token is refused
        assert await c.ledger.ledger_end() >= 0
        assert sim.requests["ledger-end"] == 2 and sim.requests["token"] == 2


async def test_refused_client_credentials_are_final(sim: Simulator) -> None:
    async with open_clients(sim, auth=oauth(sim, secret="wrong")) as c:  # type: ignore[arg-type]
        with pytest.raises(CantonError) as caught:
            await c.ledger.ledger_end()
    assert caught.value.kind is ErrorClass.FINAL and caught.value.code == "TOKEN_REFUSED"
    assert "wrong" not in str(caught.value)  # secrets never appear in messages


async def test_a_wrong_static_token_is_final_and_not_retried(sim: Simulator) -> None:
    async with open_clients(sim, auth=lambda http: StaticToken("not-the-token")) as c:
        with pytest.raises(CantonError) as caught:
            await c.ledger.ledger_end()
    assert caught.value.kind is ErrorClass.FINAL and caught.value.status == 401
    assert sim.requests["ledger-end"] == 0  # refused before reaching the endpoint, once


async def test_concurrent_callers_share_one_token_fetch(clock: ManualClock) -> None:
    calls = []

    async def fetch(form: object) -> TokenGrant:
        calls.append(form)
        return TokenGrant(access_token=f"t{len(calls)}", expires_in=60)

    source = ClientCredentials(fetch, client_id="c", client_secret="s", clock=clock)
    tokens = {await source.token() for _ in range(3)}
    assert tokens == {"t1"} and len(calls) == 1
    source.invalidate()
    assert await source.token() == "t2"


def test_refresh_time_keeps_a_margin_but_never_passes_half_the_lifetime() -> None:
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    assert refresh_at(issued, timedelta(hours=1)) == issued + timedelta(minutes=59, seconds=30)
    assert refresh_at(issued, timedelta(seconds=40)) == issued + timedelta(seconds=20)
    assert refresh_at(issued, timedelta(seconds=10)) == issued + timedelta(seconds=5)


# --- HTTP layer: retries and timeouts (tiny MockTransport fakes) --------------------------------


def flaky(failures: int, status: int = 503) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= failures:
            return httpx.Response(status, text="upstream unavailable")
        return httpx.Response(200, json={"offset": 7})

    return httpx.MockTransport(handle), seen


async def test_reads_are_retried_with_capped_backoff() -> None:
    transport, seen = flaky(3)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with make_client("http://ledger.test/", 5, transport) as client:
        http = Http(
            client,
            "ledger",
            retry=ReadRetry(attempts=4, base_delay=0.5, max_delay=1.0),
            sleep=sleep,
        )
        assert await http.read("GET", "/v2/state/ledger-end") == {"offset": 7}
    assert len(seen) == 4 and sleeps == [0.5, 1.0, 1.0]


async def test_reads_give_up_after_the_last_attempt_and_say_in_doubt() -> None:
    transport, seen = flaky(10, status=502)
    async with make_client("http://ledger.test", 5, transport) as client:
        http = Http(client, "ledger", retry=ReadRetry(attempts=3, base_delay=0), sleep=lambda s: _none())
        with pytest.raises(CantonError) as caught:
            await http.read("GET", "/v2/state/ledger-end")
    assert len(seen) == 3 and caught.value.kind is ErrorClass.IN_DOUBT and caught.value.status == 502


async def test_calls_are_never_retried() -> None:
    transport, seen = flaky(1)
    async with make_client("http://ledger.test", 5, transport) as client:
        with pytest.raises(CantonError):
            await Http(client, "ledger").call("POST", "/v2/commands/submit-and-wait", {"commandId": "x"})
    assert len(seen) == 1


async def test_final_errors_are_not_retried() -> None:
    transport, seen = flaky(5, status=400)
    async with make_client("http://ledger.test", 5, transport) as client:
        with pytest.raises(CantonError) as caught:
            await Http(client, "ledger", sleep=lambda s: _none()).read("GET", "/v2/state/ledger-end")
    assert len(seen) == 1 and caught.value.kind is ErrorClass.FINAL


async def _none() -> None:
    return None


async def test_clients_have_timeouts_and_accept_a_trailing_slash() -> None:
    async with make_client("http://ledger.test/", 12.5) as client:
        assert client.timeout.read == 12.5 and client.timeout.connect == 5.0
        assert str(client.base_url) == "http://ledger.test"


async def test_a_body_that_does_not_fit_the_schema_is_in_doubt_not_retried() -> None:
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="<html>maintenance</html>")

    async with make_client("http://ledger.test", 5, httpx.MockTransport(handle)) as client:
        with pytest.raises(CantonError) as caught:
            await Http(client, "ledger").read("GET", "/v2/state/ledger-end")
    assert caught.value.code == "INVALID_RESPONSE" and len(seen) == 1
