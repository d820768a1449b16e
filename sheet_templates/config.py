"""The organisation's configuration: fiscal calendar, lists, currencies, KPIs and allocations.

An organisation edits one TOML file; everything else in Plansheet derives from the
`OrgConfig` loaded here. Loading checks the file completely and reports every problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from sheet_templates.calendar import QUARTERS
from sheet_templates.errors import ConfigError

CONFIG_ENV = "PLANSHEET_CONFIG"
TARGET_MEASURES = ("leads", "mqls", "pipeline", "revenue")  # what marketing commits to deliver
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_CODE = re.compile(r"^[A-Z]{3}$")
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")


@dataclass(frozen=True, slots=True)
class KpiSpec:
    """An extra KPI column an organisation adds to its plans."""

    name: str
    label: str
    type: str  # "count" or "money"


@dataclass(frozen=True, slots=True)
class Accounting:
    """Where the month-end accrual is booked: the GL accounts and cost centres finance loads it into.

    The expense side is debited on the line's channel's account (else `expense_account`) and its
    region's cost centre (else `cost_centre`); the accrued liability is credited on `accrual_account`.
    """

    accrual_account: str = ""
    expense_account: str = ""
    expense_accounts: dict[str, str] = field(default_factory=dict)  # channel -> GL account
    cost_centre: str = ""
    cost_centres: dict[str, str] = field(default_factory=dict)  # region -> cost centre

    def expense_for(self, channel: str) -> str:
        return self.expense_accounts.get(channel, self.expense_account)

    def cost_centre_for(self, region: str) -> str:
        return self.cost_centres.get(region, self.cost_centre)


FINANCE_STEP = "finance"  # the approval step any finance user may take


@dataclass(frozen=True, slots=True)
class Threshold:
    """A step added to a chain when an amount (reporting currency, cents) is over `over_cents`."""

    step: str
    over_cents: int


@dataclass(frozen=True, slots=True)
class Approvals:
    """Who approves a plan, in order: the chain per region, and the steps large changes add.

    `finance` is any finance user; every other step is held by the users granted it (for a
    region, or for all). `plan_thresholds` add a step when a plan changes the approved one by
    more than an amount; `transfer_thresholds` when a budget transfer moves more than one.
    """

    steps: tuple[str, ...] = (FINANCE_STEP,)
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    plan_thresholds: tuple[Threshold, ...] = ()
    transfer_thresholds: tuple[Threshold, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def chain_for(self, region: str) -> tuple[str, ...]:
        return self.regions.get(region, self.steps)

    def label(self, step: str) -> str:
        return self.labels.get(step) or ("Finance" if step == FINANCE_STEP else step.replace("_", " ").capitalize())

    @property
    def step_names(self) -> tuple[str, ...]:
        names = [*self.steps, *(s for chain in self.regions.values() for s in chain)]
        names += [t.step for t in (*self.plan_thresholds, *self.transfer_thresholds)]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class YearParts:
    """What one fiscal year configures of its own (empty: the current year's)."""

    plan_rates: dict[str, Decimal] = field(default_factory=dict)
    period_rates: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    allocations: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    targets: dict[str, dict[str, dict[str, Decimal]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrgConfig:
    """Everything an organisation configures about its plans."""

    org_id: str
    org_name: str
    fiscal_year: int
    start_month: int
    year_named_for: str
    reporting_currency: str
    plan_rates: dict[str, Decimal]
    regions: tuple[str, ...]
    business_units: tuple[str, ...]
    channels: tuple[str, ...]
    statuses: tuple[str, ...]
    extra_kpis: tuple[KpiSpec, ...] = ()
    template_rows: int = 300
    max_lines: int = 50_000
    allocations: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # region -> quarter -> measure (leads, mqls: whole numbers; pipeline, revenue: money) -> target
    targets: dict[str, dict[str, dict[str, Decimal]]] = field(default_factory=dict)
    # currency -> fiscal month name (m01..m12) -> rate; months without one use the plan rate
    period_rates: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    accounting: Accounting = field(default_factory=Accounting)
    approvals: Approvals = field(default_factory=Approvals)
    source: str = "<default>"
    # Other fiscal years the file describes ([years.2028]): each year's own plan rates, period rates,
    # allocations and targets; what a year leaves out is the current year's.
    other_years: dict[int, YearParts] = field(default_factory=dict)

    @property
    def years(self) -> tuple[int, ...]:
        """Every fiscal year the file describes, the current one (`fiscal_year`) among them, in order."""
        return tuple(sorted({self.fiscal_year, *self.other_years}))

    def for_year(self, year: int) -> OrgConfig:
        """The configuration of fiscal year `year`: its calendar, plan rates, allocations and targets.

        The current year is this configuration itself; another is refused unless the file describes it.
        """
        if year == self.fiscal_year:
            return self
        parts = self.other_years.get(year)
        if parts is None:
            raise ConfigError(
                f"FY{year} is not described by the organisation file {Path(self.source).name}; it describes "
                + ", ".join(f"FY{y}" for y in self.years)
                + f". Add a [years.{year}] table (its plan rates, allocations and targets) to plan it"
            )
        mine = YearParts(self.plan_rates, self.period_rates, self.allocations, self.targets)
        others = {y: p for y, p in self.other_years.items() if y != year}
        return replace(
            self,
            fiscal_year=year,
            plan_rates=parts.plan_rates or self.plan_rates,
            period_rates=parts.period_rates,
            allocations=parts.allocations or self.allocations,
            targets=parts.targets or self.targets,
            other_years={**others, self.fiscal_year: mine},  # each year's configuration reaches the others
        )

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(self.plan_rates)

    def allocation(self, region: str, quarter: str) -> Decimal:
        """Finance's allocation for a region and quarter (0 when none is configured)."""
        return self.allocations.get(region, {}).get(quarter, Decimal(0))

    def target(self, region: str, quarter: str, measure: str) -> Decimal | None:
        """The region's target for a quarter and measure, or None when none is set."""
        return self.targets.get(region, {}).get(quarter, {}).get(measure)

    def rate(self, currency: str, month: str | None = None) -> Decimal:
        """Units of the reporting currency per unit of `currency` in fiscal month `month` (m01..m12)."""
        if month is not None and month in self.period_rates.get(currency, {}):
            return self.period_rates[currency][month]
        return self.plan_rates[currency]


def default_config_path() -> Path:
    return Path(str(resources.files("sheet_templates") / "default_org.toml"))


def load_config(path: str | os.PathLike[str] | None = None) -> OrgConfig:
    """Load the configuration from `path`, else `$PLANSHEET_CONFIG`, else the bundled sample."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or default_config_path()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], source: str = "<dict>") -> OrgConfig:
    """Build an `OrgConfig` from parsed TOML, collecting every problem before raising."""
    problems: list[str] = []
    get = _Getter(raw, problems)

    org_id = get.text("organisation", "id", pattern=_SLUG, hint="lower-case letters, digits, - or _")
    org_name = get.text("organisation", "name")
    year = get.integer("fiscal", "year", 1990, 2200)
    start_month = get.integer("fiscal", "start_month", 1, 12)
    named_for = get.choice("fiscal", "year_named_for", ("start", "end"), default="end")
    reporting = get.text("currencies", "reporting", pattern=_CODE, hint="a three-letter ISO code")
    rates = get.rates("currencies", "plan_rates")
    if reporting and rates and reporting not in rates:
        rates = {reporting: Decimal(1), **rates}
    if reporting and rates.get(reporting, Decimal(1)) != 1:
        problems.append(f"currencies.plan_rates.{reporting}: the reporting currency's rate must be 1")
    regions = get.names("lists", "regions", pattern=_REGION)
    bus = get.names("lists", "business_units")
    channels = get.names("lists", "channels")
    statuses = get.names("lists", "statuses")
    kpis = get.kpis()
    rows = get.integer("template", "rows", 1, 20_000, default=300)
    max_lines = get.integer("template", "max_lines", 1, 1_000_000, default=50_000)
    allocations = get.allocations(regions)
    targets = get.targets(regions)
    period_rates = get.period_rates(rates)
    accounting = get.accounting(regions, channels)
    approvals = get.approvals(regions)
    other_years = _other_years(raw, year, reporting, rates, regions, problems)

    if problems:
        raise ConfigError(f"configuration {source} has problems", details=problems)
    return OrgConfig(
        org_id=org_id,
        org_name=org_name,
        fiscal_year=year,
        start_month=start_month,
        year_named_for=named_for,
        reporting_currency=reporting,
        plan_rates=rates,
        regions=regions,
        business_units=bus,
        channels=channels,
        statuses=statuses,
        extra_kpis=kpis,
        template_rows=rows,
        max_lines=max_lines,
        allocations=allocations,
        targets=targets,
        period_rates=period_rates,
        accounting=accounting,
        approvals=approvals,
        source=source,
        other_years=other_years,
    )


def _other_years(
    raw: dict[str, Any],
    current: int,
    reporting: str,
    rates: dict[str, Decimal],
    regions: tuple[str, ...],
    problems: list[str],
) -> dict[int, YearParts]:
    """The [years.N] tables: each year's plan rates, period rates, allocations and targets, checked as the current's."""
    value = raw.get("years", {})
    if not isinstance(value, dict):
        problems.append("[years] must be a table of fiscal years, e.g. [years.2028]")
        return {}
    out: dict[int, YearParts] = {}
    for key, section in value.items():
        where = f"years.{key}"
        if not str(key).isdigit() or not 1990 <= int(key) <= 2200:
            problems.append(f"{where}: name a fiscal year from 1990 to 2200, e.g. [years.2028]")
            continue
        if int(key) == current:
            problems.append(f"{where}: FY{key} is the current year (fiscal.year); set its values in the main tables")
            continue
        if not isinstance(section, dict):
            problems.append(f"{where} must be a table")
            continue
        unknown = sorted(set(section) - {"currencies", "allocations", "targets"})
        if unknown:
            problems.append(f"{where}: {', '.join(unknown)}: a year sets only currencies, allocations and targets")
        found: list[str] = []
        get = _Getter(section, found)
        currencies = section.get("currencies", {})
        year_rates = get.rates("currencies", "plan_rates") if isinstance(currencies, dict) and currencies else {}
        if year_rates and reporting not in year_rates:
            year_rates = {reporting: Decimal(1), **year_rates}
        if year_rates and year_rates.get(reporting) != 1:
            found.append(f"currencies.plan_rates.{reporting}: the reporting currency's rate must be 1")
        if year_rates and set(year_rates) != set(rates):
            found.append("currencies.plan_rates must name the same currencies as the current year's")
        parts = YearParts(
            plan_rates=year_rates,
            period_rates=get.period_rates(year_rates or rates),
            allocations=get.allocations(regions),
            targets=get.targets(regions),
        )
        problems.extend(f"{where}.{p}" for p in found)
        out[int(key)] = parts
    return out


class _Getter:
    """Reads typed values out of the raw TOML, recording a problem instead of raising."""

    def __init__(self, raw: dict[str, Any], problems: list[str]) -> None:
        self.raw = raw
        self.problems = problems

    def _value(self, table: str, key: str, default: Any = None) -> Any:
        section = self.raw.get(table, {})
        if not isinstance(section, dict):
            self.problems.append(f"[{table}] must be a table")
            return default
        if key not in section:
            if default is None:
                self.problems.append(f"{table}.{key} is missing")
            return default
        return section[key]

    def text(self, table: str, key: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self._value(table, key)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{table}.{key} must be a non-empty string")
            return ""
        if pattern is not None and not pattern.match(value):
            self.problems.append(f"{table}.{key} = {value!r} is not valid ({hint})")
        return value

    def integer(self, table: str, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self._value(table, key, default)
        if value is None:
            return low
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problems.append(f"{table}.{key} must be a whole number from {low} to {high}")
            return low
        return value

    def choice(self, table: str, key: str, options: tuple[str, ...], default: str) -> str:
        value = self._value(table, key, default)
        if value not in options:
            self.problems.append(f"{table}.{key} must be one of {', '.join(options)}")
            return default
        return value

    def names(self, table: str, key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        value = self._value(table, key)
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            self.problems.append(f"{table}.{key} must be a non-empty list of strings")
            return ()
        for v in value:
            if v != v.strip() or len(v) > 60 or v[0] in "=+-@":
                self.problems.append(f"{table}.{key}: {v!r} must be at most 60 characters, trimmed, not formula-like")
            elif pattern is not None and not pattern.match(v):
                self.problems.append(f"{table}.{key}: {v!r} may use only letters, digits, - and _")
        if len({v.casefold() for v in value}) != len(value):
            self.problems.append(f"{table}.{key} has a value twice")
        return tuple(value)

    def rates(self, table: str, key: str) -> dict[str, Decimal]:
        value = self._value(table, key)
        if not isinstance(value, dict) or not value:
            if value is not None:
                self.problems.append(f"{table}.{key} must be a table of currency = rate")
            return {}
        rates: dict[str, Decimal] = {}
        for code, rate in value.items():
            if not _CODE.match(code):
                self.problems.append(f"{table}.{key}: {code!r} is not a three-letter currency code")
                continue
            number = _decimal(rate)
            if number is None or number <= 0:
                self.problems.append(f'{table}.{key}.{code} must be a positive number (as a string, e.g. "1.08")')
                continue
            rates[code] = number
        return rates

    def kpis(self) -> tuple[KpiSpec, ...]:
        value = self.raw.get("kpis", [])
        if not isinstance(value, list):
            self.problems.append("[[kpis]] must be an array of tables")
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.problems.append(f"kpis[{i}] must be a table with name, label and type")
                continue
            name, label, kind = item.get("name"), item.get("label"), item.get("type")
            if not isinstance(name, str) or not _NAME.match(name):
                self.problems.append(f"kpis[{i}].name must be lower-case letters, digits and _")
            elif not isinstance(label, str) or not label.strip():
                self.problems.append(f"kpis[{i}].label must be a non-empty string")
            elif kind not in ("count", "money"):
                self.problems.append(f'kpis[{i}].type must be "count" or "money"')
            else:
                out.append(KpiSpec(name, label.strip(), kind))
        return tuple(out)

    def allocations(self, regions: tuple[str, ...]) -> dict[str, dict[str, Decimal]]:
        value = self.raw.get("allocations", {})
        out: dict[str, dict[str, Decimal]] = {}
        if not isinstance(value, dict):
            self.problems.append("[allocations] must be a table of regions")
            return out
        for region, quarters in value.items():
            if regions and region not in regions:
                self.problems.append(f"allocations.{region}: {region!r} is not one of lists.regions")
                continue
            if not isinstance(quarters, dict):
                self.problems.append(f"allocations.{region} must be a table of Q1..Q4 amounts")
                continue
            out[region] = {}
            for quarter, amount in quarters.items():
                number = _decimal(amount)
                if quarter not in QUARTERS:
                    self.problems.append(f"allocations.{region}.{quarter}: use Q1, Q2, Q3 or Q4")
                elif number is None or number < 0 or number != number.quantize(Decimal("0.01")):
                    self.problems.append(f"allocations.{region}.{quarter} must be a non-negative amount in cents")
                else:
                    out[region][quarter] = number
        return out

    def targets(self, regions: tuple[str, ...]) -> dict[str, dict[str, dict[str, Decimal]]]:
        value = self.raw.get("targets", {})
        out: dict[str, dict[str, dict[str, Decimal]]] = {}
        if not isinstance(value, dict):
            self.problems.append("[targets] must be a table of regions")
            return out
        for region, quarters in value.items():
            if regions and region not in regions:
                self.problems.append(f"targets.{region}: {region!r} is not one of lists.regions")
                continue
            if not isinstance(quarters, dict) or not all(isinstance(q, dict) for q in quarters.values()):
                self.problems.append(f"targets.{region} must hold tables [targets.{region}.Q1] .. Q4")
                continue
            out[region] = {}
            for quarter, measures in quarters.items():
                if quarter not in QUARTERS:
                    self.problems.append(f"targets.{region}.{quarter}: use Q1, Q2, Q3 or Q4")
                    continue
                out[region][quarter] = {}
                for measure, amount in measures.items():
                    number = _decimal(amount)
                    where = f"targets.{region}.{quarter}.{measure}"
                    if measure not in TARGET_MEASURES:
                        self.problems.append(f"{where}: use {', '.join(TARGET_MEASURES)}")
                    elif number is None or number < 0:
                        self.problems.append(f"{where} must be a non-negative number")
                    elif measure in ("leads", "mqls") and number != number.to_integral_value():
                        self.problems.append(f"{where} must be a whole number")
                    else:
                        out[region][quarter][measure] = number
        return out

    def period_rates(self, plan_rates: dict[str, Decimal]) -> dict[str, dict[str, Decimal]]:
        section = self.raw.get("currencies", {})
        value = section.get("period_rates", {}) if isinstance(section, dict) else {}
        out: dict[str, dict[str, Decimal]] = {}
        if not isinstance(value, dict):
            self.problems.append("currencies.period_rates must be a table of currencies")
            return out
        months = {f"m{i:02d}" for i in range(1, 13)}
        for code, by_month in value.items():
            if plan_rates and code not in plan_rates:
                self.problems.append(f"currencies.period_rates.{code}: {code} has no plan rate")
                continue
            if not isinstance(by_month, dict):
                self.problems.append(f"currencies.period_rates.{code} must be a table of m01..m12 = rate")
                continue
            out[code] = {}
            for month, rate in by_month.items():
                number = _decimal(rate)
                if month not in months:
                    self.problems.append(f"currencies.period_rates.{code}.{month}: use fiscal months m01..m12")
                elif number is None or number <= 0:
                    self.problems.append(f"currencies.period_rates.{code}.{month} must be a positive rate")
                else:
                    out[code][month] = number
        return out

    def accounting(self, regions: tuple[str, ...], channels: tuple[str, ...]) -> Accounting:
        value = self.raw.get("accounting", {})
        if not isinstance(value, dict):
            self.problems.append("[accounting] must be a table")
            return Accounting()
        known = {"accrual_account", "expense_account", "expense_accounts", "cost_centre", "cost_centres"}
        for key in value:
            if key not in known:
                self.problems.append(f"accounting.{key}: use {', '.join(sorted(known))}")
        single = {}
        for key in ("accrual_account", "expense_account", "cost_centre"):
            code = value.get(key, "")
            if not isinstance(code, str) or len(code) > 40 or (code and (code != code.strip() or code[0] in "=+-@")):
                self.problems.append(
                    f"accounting.{key} must be an account or cost centre code of at most 40 characters"
                )
                code = ""
            single[key] = code
        maps = {}
        for key, names, what in (
            ("expense_accounts", channels, "lists.channels"),
            ("cost_centres", regions, "lists.regions"),
        ):
            table = value.get(key, {})
            if not isinstance(table, dict):
                self.problems.append(f"accounting.{key} must be a table")
                table = {}
            for name, code in table.items():
                if names and name not in names:
                    self.problems.append(f"accounting.{key}.{name}: {name!r} is not one of {what}")
                elif not isinstance(code, str) or not code.strip() or len(code) > 40 or code[0] in "=+-@":
                    self.problems.append(f"accounting.{key}.{name} must be a code of at most 40 characters")
            maps[key] = {k: v for k, v in table.items() if isinstance(v, str)}
        return Accounting(
            accrual_account=single["accrual_account"],
            expense_account=single["expense_account"],
            expense_accounts=maps["expense_accounts"],
            cost_centre=single["cost_centre"],
            cost_centres=maps["cost_centres"],
        )

    def approvals(self, regions: tuple[str, ...]) -> Approvals:
        value = self.raw.get("approvals", {})
        if not isinstance(value, dict):
            self.problems.append("[approvals] must be a table")
            return Approvals()
        known = {"steps", "regions", "thresholds", "labels"}
        for key in value:
            if key not in known:
                self.problems.append(f"approvals.{key}: use {', '.join(sorted(known))}")

        def chain(given: Any, where: str) -> tuple[str, ...]:
            if not isinstance(given, list) or not given or not all(isinstance(s, str) for s in given):
                self.problems.append(f"{where} must be a non-empty list of step names")
                return (FINANCE_STEP,)
            for step in given:
                if not _NAME.match(step):
                    self.problems.append(f"{where}: {step!r} is not a step name (lower-case letters, digits and _)")
            if len(set(given)) != len(given):
                self.problems.append(f"{where} names a step twice")
            return tuple(given)

        steps = chain(value["steps"], "approvals.steps") if "steps" in value else (FINANCE_STEP,)
        per_region: dict[str, tuple[str, ...]] = {}
        given_regions = value.get("regions", {})
        if not isinstance(given_regions, dict):
            self.problems.append("approvals.regions must be a table of region = [steps]")
            given_regions = {}
        for region, steps_of in given_regions.items():
            if regions and region not in regions:
                self.problems.append(f"approvals.regions.{region}: {region!r} is not one of lists.regions")
                continue
            per_region[region] = chain(steps_of, f"approvals.regions.{region}")
        plan, transfer = [], []
        given_thresholds = value.get("thresholds", [])
        if not isinstance(given_thresholds, list):
            self.problems.append("[[approvals.thresholds]] must be an array of tables")
            given_thresholds = []
        for i, item in enumerate(given_thresholds):
            where = f"approvals.thresholds[{i}]"
            if not isinstance(item, dict) or set(item) - {"step", "plan_change_over", "transfer_over"}:
                self.problems.append(f"{where} must be a table of step and plan_change_over or transfer_over")
                continue
            step = item.get("step")
            if not isinstance(step, str) or not _NAME.match(step):
                self.problems.append(f"{where}.step must be a step name (lower-case letters, digits and _)")
                continue
            if not {"plan_change_over", "transfer_over"} & item.keys():
                self.problems.append(f"{where} needs plan_change_over or transfer_over (an amount)")
            for key, into in (("plan_change_over", plan), ("transfer_over", transfer)):
                if key not in item:
                    continue
                number = _decimal(item[key])
                if number is None or number < 0 or number != number.quantize(Decimal("0.01")):
                    self.problems.append(
                        f'{where}.{key} must be an amount of zero or more (as a string, e.g. "250000")'
                    )
                    continue
                into.append(Threshold(step, int(number * 100)))
        labels = value.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip() for v in labels.values()):
            self.problems.append("approvals.labels must be a table of step = label")
            labels = {}
        return Approvals(
            steps, per_region, tuple(plan), tuple(transfer), {k: v.strip()[:60] for k, v in labels.items()}
        )


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    if isinstance(value, float):
        return Decimal(repr(value))
    return None
