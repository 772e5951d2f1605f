"""Daml Numerics go out as plain decimal strings, the only form the Ledger API reads (issue #15,
point 7; docs/canton-facts.md): "0.0000005", never "5E-7"."""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.canton.splice_types import json_body, numeric_text
from pipeline.simulator.app import Simulator
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    APP,
    clock_fixture,
    open_clients,
    payment,
    raw_post,
    sim_fixture,
)

# digital-asset/canton ledger-api-core .../api/validation/ValueValidator.scala validNumericPattern
CANTON_NUMERIC = re.compile(r"[+-]?\d{1,38}(\.\d{0,37})?")

# Every Decimal a Daml Numeric can hold, in each exponent form Python may carry it in (built from
# text, which is exact: arithmetic would round to the context's 28 digits).
numerics = st.one_of(
    st.builds(
        lambda digits, scale: Decimal(f"{digits}E-{scale}"),
        st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
        st.integers(min_value=0, max_value=37),
    ),
    st.builds(
        lambda digit, zeros: Decimal(f"{digit}E+{zeros}"),  # "5E+3": no trailing zeros kept
        st.integers(min_value=-9, max_value=9),
        st.integers(min_value=0, max_value=37),
    ),
)


@given(numerics)
def test_every_numeric_is_written_in_the_form_canton_reads(value: Decimal) -> None:
    text = numeric_text(value)
    assert CANTON_NUMERIC.fullmatch(text), text
    assert Decimal(text) == value


@given(numerics.filter(lambda d: d > 0))
def test_request_bodies_carry_decimals_as_plain_strings(amount: Decimal) -> None:
    body = msgspec.json.decode(json_body({"choiceArgument": {"amount": amount, "inputs": [amount]}}))
    for text in (body["choiceArgument"]["amount"], body["choiceArgument"]["inputs"][0]):
        assert isinstance(text, str) and CANTON_NUMERIC.fullmatch(text) and Decimal(text) == amount


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+38"), Decimal("1E-38")])
def test_what_no_numeric_can_hold_is_refused_before_sending(value: Decimal) -> None:
    with pytest.raises(ValueError, match="not a Daml Numeric"):
        numeric_text(value)


async def test_a_price_of_half_a_millionth_is_paid(sim: Simulator) -> None:
    async with open_clients(sim) as c:
        commands = await payment(c, ALICE, "0.0000005", "pay-tiny")
        assert b'"amount":"0.0000005"' in json_body(commands)
        await c.ledger.submit_and_wait(commands)
    assert [t.amount for t in sim.transfers()] == [Decimal("0.0000005")]
    assert sim.balance(APP) == Decimal("100.0000005")


@pytest.mark.parametrize("amount", ["5E-7", "5e-07", ".5", "1,5", 5e-07])
async def test_the_simulator_refuses_other_numeric_forms_as_canton_does(sim: Simulator, amount: object) -> None:
    async with open_clients(sim) as c:
        body = msgspec.json.decode(json_body(await payment(c, ALICE, "1", "pay-odd")))
    body["commands"][0]["ExerciseCommand"]["choiceArgument"]["amount"] = amount
    answer = await raw_post(sim, "/v2/commands/submit-and-wait", body)
    error = answer.json()
    assert answer.status_code == 400 and error["code"] == "INVALID_ARGUMENT" and error["errorCategory"] == 8
    assert error["cause"].startswith("The submitted request has invalid arguments: Could not read Numeric string")
    assert sim.transfers() == []
