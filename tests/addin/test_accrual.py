"""The accrual of one purchase order: properties that hold for every amount, period and day."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from addin.accrual import accrual_cents, delivered_cents, ratio_cents

START = dt.date(2026, 2, 1)
amounts = st.integers(min_value=0, max_value=10**13)  # up to 100 billion in cents
days = st.integers(min_value=0, max_value=800)


@given(amounts, days, days, days)
def test_straight_line_delivery_grows_day_by_day_up_to_the_whole_amount(
    amount: int, length: int, a: int, b: int
) -> None:
    end = START + dt.timedelta(days=length)
    first, second = sorted((a, b))
    day_one, day_two = START + dt.timedelta(days=first - 5), START + dt.timedelta(days=second - 5)
    one, two = delivered_cents(amount, START, end, day_one), delivered_cents(amount, START, end, day_two)
    assert 0 <= one <= two <= amount  # never more than the PO, never less on a later day
    assert delivered_cents(amount, START, end, end) == amount  # the last day delivers it all
    assert delivered_cents(amount, START, end, START - dt.timedelta(days=1)) == 0  # nothing before it starts


@given(amounts, days, days)
def test_straight_line_is_the_days_share_rounded_half_up(amount: int, length: int, into: int) -> None:
    end = START + dt.timedelta(days=length)
    through = START + dt.timedelta(days=min(into, length))
    expected = (Decimal(amount) * ((through - START).days + 1) / ((end - START).days + 1)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    assert delivered_cents(amount, START, end, through) == int(expected)


@given(amounts, st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_plan_phasing_follows_the_planned_share(amount: int, done: int, whole: int) -> None:
    delivered = delivered_cents(amount, START, START, START, "plan", (done, whole))
    assert delivered == ratio_cents(amount, min(done, whole), whole)
    assert 0 <= delivered <= amount


@given(amounts, days)
def test_on_invoice_accrues_nothing_and_no_accrual_is_negative(amount: int, length: int) -> None:
    end = START + dt.timedelta(days=length)
    assert delivered_cents(amount, START, end, end, "invoice") == 0
    assert accrual_cents(amount, amount + 1) == 0  # invoiced ahead of delivery: a prepayment, not a negative accrual
    assert accrual_cents(amount, 0) == amount
