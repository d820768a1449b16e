"""One organisation file, several fiscal years: the calendar once, each year's rates, allocations and targets."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from sheet_templates.config import default_config_path, parse_config
from sheet_templates.errors import ConfigError
from sheet_templates.schema import build_schema


def _raw() -> dict:
    return tomllib.loads(default_config_path().read_text(encoding="utf-8"))


def test_a_year_the_file_describes_has_its_own_calendar_rates_allocations_and_targets() -> None:
    raw = _raw()
    raw["years"] = {
        "2028": {
            "currencies": {"plan_rates": {"USD": "1", "EUR": "1.12", "GBP": "1.30", "JPY": "0.0070", "BRL": "0.19"}},
            "allocations": {"NA": {"Q1": "1500000", "Q2": "1500000", "Q3": "1500000", "Q4": "1500000"}},
        }
    }
    config = parse_config(raw)
    assert config.years == (2027, 2028)
    assert config.for_year(2027) is config
    next_year = config.for_year(2028)
    assert next_year.fiscal_year == 2028 and next_year.plan_rates["EUR"] == Decimal("1.12")
    assert next_year.allocation("NA", "Q1") == Decimal("1500000") and next_year.allocation("EMEA", "Q1") == 0
    assert next_year.period_rates == {}  # this year's actual rates are not next year's
    assert next_year.targets == config.targets  # left out: the current year's
    schema = build_schema(next_year)
    assert schema.calendar.label == "FY2028"
    assert (schema.calendar.start.isoformat(), schema.calendar.end.isoformat()) == ("2027-02-01", "2028-01-31")
    assert schema.template_id == build_schema(config).template_id and schema.version != build_schema(config).version


def test_a_year_the_file_does_not_describe_is_refused_naming_the_fix() -> None:
    config = parse_config(_raw())
    with pytest.raises(ConfigError) as refused:
        config.for_year(2029)
    assert "FY2029" in str(refused.value) and "[years.2029]" in str(refused.value)


@pytest.mark.parametrize(
    ("years", "problem"),
    [
        ({"20x8": {}}, "years.20x8: name a fiscal year"),
        ({"2027": {}}, "years.2027: FY2027 is the current year"),
        ({"2028": {"lists": {}}}, "years.2028: lists: a year sets only currencies, allocations and targets"),
        (
            {"2028": {"currencies": {"plan_rates": {"USD": "1", "EUR": "1.1"}}}},
            "years.2028.currencies.plan_rates must name",
        ),
        ({"2028": {"allocations": {"MARS": {"Q1": "1"}}}}, "years.2028.allocations.MARS"),
    ],
)
def test_a_year_described_wrongly_is_refused_naming_where(years: dict, problem: str) -> None:
    raw = _raw()
    raw["years"] = years
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert any(problem in d for d in refused.value.details), refused.value.details


def test_each_years_configuration_reaches_the_others_as_they_are() -> None:
    raw = _raw()
    raw["years"] = {"2028": {"allocations": {"NA": {"Q1": "1"}}}}
    config = parse_config(raw)
    back = config.for_year(2028).for_year(2027)
    assert (back.fiscal_year, back.allocations, back.period_rates, back.years) == (
        2027,
        config.allocations,
        config.period_rates,
        (2027, 2028),
    )
    assert build_schema(config).for_year(2028).for_year(2027).calendar.label == "FY2027"
