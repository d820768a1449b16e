"""The month-end accrual of a purchase order: what was delivered by a day and not yet invoiced.

Pure and exact (integer cents), so the service, its tests and the oracle's independent
computation can be held to the cent. Finance books, at each month end, the work a vendor has
delivered but not invoiced yet: delivered to date minus invoiced to date, never below zero.
How much was delivered follows the PO's method:

- `straight-line` (the default): the PO's amount spread evenly over the days of its service
  period, first and last day included;
- `plan`: in step with the planned spend of the line it is matched to (the share of the
  line's year planned up to the month's end), for work delivered as the plan phases it;
- `invoice`: nothing is accrued; the spend is recognised when it is invoiced.
"""

from __future__ import annotations

import datetime as dt

METHODS = ("straight-line", "plan", "invoice")


def ratio_cents(cents: int, numerator: int, denominator: int) -> int:
    """`cents * numerator / denominator`, rounded half away from zero, exactly (as `addin.fx` rounds)."""
    if denominator <= 0:
        return 0
    value = cents * numerator
    sign = -1 if value < 0 else 1
    return sign * ((abs(value) * 2 + denominator) // (2 * denominator))


def delivered_cents(
    amount: int,
    start: dt.date,
    end: dt.date,
    through: dt.date,
    method: str = "straight-line",
    planned_share: tuple[int, int] = (0, 0),
) -> int:
    """How much of a PO of `amount` cents was delivered by the end of day `through`.

    `planned_share` is (line's planned spend to the month's end, line's planned spend for the
    year), used by the `plan` method; a line with no planned spend falls back to straight-line.
    """
    if method == "invoice" or through < start:
        return 0
    if method == "plan" and planned_share[1] > 0:
        done, whole = planned_share
        return ratio_cents(amount, min(max(done, 0), whole), whole)
    if through >= end:
        return amount
    days = (end - start).days + 1
    return ratio_cents(amount, (through - start).days + 1, days)


def accrual_cents(delivered: int, invoiced: int) -> int:
    """The accrual: delivered but not invoiced, never negative (an invoice ahead of delivery is a prepayment)."""
    return max(delivered - invoiced, 0)
