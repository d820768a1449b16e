"""Realistic sample plan lines, for the demo, the tests and the benchmarks.

Deterministic for a given seed: campaigns run inside the fiscal year, spend is phased over
the campaign's months, committed and actual spend follow the months already past, and
leads, MQLs, pipeline and revenue follow the money.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from sheet_templates.schema import PlanSchema

_THEMES = [
    "Cloud Summit",
    "Data Week",
    "Spring Launch",
    "Partner Days",
    "Security Forum",
    "AI Roadshow",
    "Customer Awards",
    "Retail Focus",
    "Finance Leaders",
    "Dev Conference",
    "Brand Refresh",
    "Q4 Push",
]
_ACTIVITIES = {
    "Events": ["Booth", "Hosted dinner", "Sponsorship"],
    "Paid Search": ["Always-on search", "Competitor terms"],
    "Paid Social": ["LinkedIn ads", "Video ads"],
    "Content": ["E-book", "Research report"],
    "Webinars": ["Webinar series", "Panel"],
    "Partners": ["MDF co-marketing", "Partner event"],
    "Email": ["Nurture", "Newsletter"],
    "ABM": ["Target accounts", "Direct mail"],
}
_TEAMS = ["Field Marketing", "Demand Gen", "Digital", "Partner Marketing"]
_OWNERS = ["alex.kim", "sam.rivera", "jo.martin", "priya.shah", "lee.chen", "maria.lopez"]
_REGION_CURRENCY = {"NA": "USD", "EMEA": "EUR", "APAC": "USD", "LATAM": "BRL"}


def sample_lines(
    schema: PlanSchema,
    region: str,
    n: int,
    *,
    seed: int = 0,
    today: dt.date | None = None,
    id_prefix: str | None = None,
    fill: float = 0.97,
    results_at_plan_rates: bool = False,
    phased_to_allocation: bool = False,
) -> list[dict[str, Any]]:
    """`n` plausible plan lines for `region`, as dicts keyed by schema column name.

    The lines add up to about `fill` times the region's allocation (when it has one). With
    `results_at_plan_rates`, leads and MQLs follow the line's spend in the reporting currency (at
    its plan rate) and an MQL's pipeline is worth the same in every currency, so results compare
    across regions; without it they follow the amount in the line's own currency. With
    `phased_to_allocation`, each campaign is placed in the months where the region's allocation has
    the most room left, as a planner fills each quarter's budget, so every quarter lands near its
    allocation; without it campaigns are placed anywhere in the year (the middle months the fullest).
    """
    rng = random.Random(f"{seed}:{region}")
    cfg, cal = schema.config, schema.calendar
    months = cal.months
    today = today or months[4].first_day  # by default five months into the year
    elapsed = sum(1 for m in months if m.last_day < today)
    currency = _REGION_CURRENCY.get(region, cfg.reporting_currency)
    if currency not in cfg.plan_rates:
        currency = cfg.reporting_currency
    channels = list(cfg.channels)
    quarters = cfg.allocations.get(region, {})
    allocation = sum(quarters.values(), Decimal(0))
    per_line = allocation * Decimal(str(fill)) / n / cfg.plan_rates[currency] if allocation else Decimal(30_000)
    share = Decimal(str(fill)) / cfg.plan_rates[currency]  # of an allocated amount, in the line's currency
    room = [quarters.get(f"Q{m // 3 + 1}", Decimal(0)) / 3 * share for m in range(12)]  # what each month may take
    placed = [Decimal(0)] * 12
    prefix = id_prefix or region
    lines = []
    for i in range(n):
        channel = rng.choice(channels)
        length = rng.choice([1, 2, 3, 3, 4, 6, 12])
        if phased_to_allocation and allocation:
            starts = range(12 - length + 1)
            left = [max(sum(room[m] - placed[m] for m in range(s, s + length)) / length, Decimal(0)) for s in starts]
            # cubed: the roomiest months are much the likeliest, yet not the only ones
            start = rng.choices(starts, weights=[float(x + per_line / 100) ** 3 for x in left])[0]
        else:
            start = rng.randrange(12 - length + 1)  # campaigns spread evenly over the year
        end = start + length - 1
        budget = int(per_line * Decimal(rng.uniform(0.4, 1.6)) / 10) * 10 + 10
        per_month = Decimal(budget) / (end - start + 1)
        for m in range(start, end + 1):
            placed[m] += per_month
        line: dict[str, Any] = {
            "line_id": f"{prefix}-{i + 1:04d}",
            "region": region,
            "business_unit": rng.choice(cfg.business_units),
            "team": rng.choice(_TEAMS),
            "campaign": f"{rng.choice(_THEMES)} {cal.label}",
            "campaign_code": f"{region[:2]}{cal.year % 100:02d}-{rng.randrange(1000, 9999)}",
            "crm_campaign_id": "",  # the CRM's id, once the campaign exists there
            "channel": channel,
            "activity": rng.choice(_ACTIVITIES.get(channel, ["Campaign"])),
            "owner": f"{rng.choice(_OWNERS)}@example.com",
            "currency": currency,
            "status": rng.choice([s for s in cfg.statuses if s != "Cancelled"]),
            "start_date": months[start].first_day,
            "end_date": months[end].last_day,
        }
        spent = Decimal(0)
        for m in months:
            amount = per_month.quantize(Decimal("0.01")) if start < m.index <= end + 1 else Decimal(0)
            line[m.name] = amount if amount else None
            if m.index <= elapsed:
                spent += amount
        line["actual"] = (spent * Decimal(rng.choice([80, 90, 95, 100, 104])) / 100).quantize(Decimal("0.01"))
        still_to_spend = max(Decimal(0), Decimal(budget) - spent)  # per-month rounding can overshoot by a cent
        line["committed"] = (still_to_spend * Decimal(rng.choice([0, 25, 50])) / 100).quantize(Decimal("0.01"))
        rate = cfg.plan_rates[currency]
        per_lead = rng.choice([40, 60, 90, 150])
        leads = int(budget * rate / per_lead) if results_at_plan_rates else int(budget / per_lead)
        line["leads"] = leads
        line["mqls"] = int(leads * rng.choice([0.2, 0.3, 0.4]))
        line["pipeline"] = Decimal(line["mqls"] * rng.choice([2000, 5000, 9000]))
        if results_at_plan_rates:  # the same pipeline per MQL in the reporting currency, written in the line's
            line["pipeline"] = (line["pipeline"] / rate).quantize(Decimal("0.01"))
        line["revenue"] = (line["pipeline"] * Decimal("0.22")).quantize(Decimal("0.01"))
        line["notes"] = (
            rng.choice(["", "", "Agency quote pending", "Shared with sales", "Co-funded by partner"]) or None
        )
        lines.append(line)
    return lines
