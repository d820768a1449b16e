from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sheet_templates import ConfigError, PlansheetError, load_config
from sheet_templates.config import CONFIG_ENV, KpiSpec, default_config_path

SMALL_ORG = """
[organisation]
id = "globex"
name = "Globex"

[fiscal]
year = 2026
start_month = 1

[currencies]
reporting = "EUR"
plan_rates = { EUR = "1", USD = "0.92" }

[lists]
regions = ["DACH", "Nordics"]
business_units = ["Core"]
channels = ["Events", "Email"]
statuses = ["Planned", "Done"]

[allocations.DACH]
Q1 = "1000.50"
Q3 = 2000
"""

BROKEN_ORG = """
[organisation]
id = "Acme Corp"

[fiscal]
year = 2027
start_month = 13
year_named_for = "middle"

[currencies]
reporting = "usd"
plan_rates = { USD = "1", EUR = "-1.08", euro = "1.1" }

[lists]
regions = ["NA", "EMEA", "emea"]
business_units = []
channels = ["Events", "=HYPERLINK()"]
statuses = ["Planned"]

[[kpis]]
name = "SQLs"
label = "Expected SQLs"
type = "count"

[[kpis]]
name = "nps"
label = "NPS"
type = "percent"

[template]
rows = 0

[allocations.MARS]
Q1 = "100"

[allocations.NA]
Q5 = "100"
Q2 = "100.001"
"""


def write(tmp_path: Path, text: str, name: str = "org.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_sample_loads(config) -> None:
    assert config.org_id == "acme"
    assert config.org_name == "Acme Corporation"
    assert (config.fiscal_year, config.start_month, config.year_named_for) == (2027, 2, "end")
    assert config.reporting_currency == "USD"
    assert config.plan_rates == {
        "USD": Decimal("1"),
        "EUR": Decimal("1.08"),
        "GBP": Decimal("1.27"),
        "JPY": Decimal("0.0067"),
        "BRL": Decimal("0.20"),
    }
    assert all(isinstance(rate, Decimal) for rate in config.plan_rates.values())
    assert config.currencies == ("USD", "EUR", "GBP", "JPY", "BRL")
    assert config.regions == ("NA", "EMEA", "APAC", "LATAM")
    assert "Paid Search" in config.channels
    assert config.statuses[0] == "Planned"
    assert config.extra_kpis == ()
    assert (config.template_rows, config.max_lines) == (300, 50_000)
    assert config.allocation("EMEA", "Q4") == Decimal("1000000")
    assert config.source == str(default_config_path())


def test_bundled_sample_allocates_every_region_every_quarter(config) -> None:
    for region in config.regions:
        assert all(config.allocation(region, q) > 0 for q in ("Q1", "Q2", "Q3", "Q4"))


def test_another_organisation_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SMALL_ORG))
    assert config.org_id == "globex"
    assert config.year_named_for == "end"  # the default
    assert config.template_rows == 300
    assert config.allocation("DACH", "Q1") == Decimal("1000.50")
    assert config.allocation("DACH", "Q3") == Decimal("2000")
    assert config.allocation("DACH", "Q2") == 0  # not configured
    assert config.allocation("Nordics", "Q1") == 0


def test_broken_file_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN_ORG)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert isinstance(error, PlansheetError)
    assert error.message == f"configuration {path} has problems"
    expected = [
        "organisation.id = 'Acme Corp' is not valid (lower-case letters, digits, - or _)",
        "organisation.name is missing",
        "fiscal.start_month must be a whole number from 1 to 12",
        "fiscal.year_named_for must be one of start, end",
        "currencies.reporting = 'usd' is not valid (a three-letter ISO code)",
        'currencies.plan_rates.EUR must be a positive number (as a string, e.g. "1.08")',
        "currencies.plan_rates: 'euro' is not a three-letter currency code",
        "lists.regions has a value twice",
        "lists.business_units must be a non-empty list of strings",
        "lists.channels: '=HYPERLINK()' must be at most 60 characters, trimmed, not formula-like",
        "kpis[0].name must be lower-case letters, digits and _",
        'kpis[1].type must be "count" or "money"',
        "template.rows must be a whole number from 1 to 20000",
        "allocations.MARS: 'MARS' is not one of lists.regions",
        "allocations.NA.Q5: use Q1, Q2, Q3 or Q4",
        "allocations.NA.Q2 must be a non-negative amount in cents",
    ]
    assert sorted(error.details) == sorted(expected)
    # What the user sees: one message listing every problem, one per line.
    text = str(error)
    assert text.startswith(f"configuration {path} has problems:\n")
    assert all(f"  - {problem}" in text.splitlines() for problem in expected)


def test_unknown_region_in_allocations(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_ORG + '\n[allocations.Benelux]\nQ1 = "5"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.details == ["allocations.Benelux: 'Benelux' is not one of lists.regions"]


def test_kpis_that_are_not_tables_are_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_ORG.replace("[organisation]", 'kpis = ["sqls"]\n\n[organisation]'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.details == ["kpis[0] must be a table with name, label and type"]


def test_extra_kpis_are_read(tmp_path: Path) -> None:
    kpis = '\n[[kpis]]\nname = "sqls"\nlabel = " Expected SQLs "\ntype = "count"\n'
    kpis += '\n[[kpis]]\nname = "cpl"\nlabel = "Cost per lead"\ntype = "money"\n'
    config = load_config(write(tmp_path, SMALL_ORG + kpis))
    assert config.extra_kpis == (KpiSpec("sqls", "Expected SQLs", "count"), KpiSpec("cpl", "Cost per lead", "money"))


def test_reporting_currency_missing_from_plan_rates_gets_rate_one(tmp_path: Path) -> None:
    text = SMALL_ORG.replace('plan_rates = { EUR = "1", USD = "0.92" }', 'plan_rates = { USD = "0.92" }')
    config = load_config(write(tmp_path, text))
    assert config.plan_rates == {"EUR": Decimal(1), "USD": Decimal("0.92")}
    assert config.currencies[0] == "EUR"


def test_reporting_currency_rate_must_be_one(tmp_path: Path) -> None:
    text = SMALL_ORG.replace('EUR = "1"', 'EUR = "1.01"')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.details == ["currencies.plan_rates.EUR: the reporting currency's rate must be 1"]


def test_rates_given_as_numbers_keep_their_decimal_value(tmp_path: Path) -> None:
    text = SMALL_ORG.replace('USD = "0.92"', "USD = 0.92")
    assert load_config(write(tmp_path, text)).plan_rates["USD"] == Decimal("0.92")


def test_plansheet_config_environment_variable_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SMALL_ORG)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    config = load_config()
    assert config.org_id == "globex"
    assert config.source == str(path)
    # An explicit path wins over the environment.
    assert load_config(default_config_path()).org_id == "acme"


def test_empty_environment_variable_means_the_bundled_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "")
    assert load_config().org_id == "acme"


def test_tests_do_not_see_a_developers_config_variable() -> None:
    import os

    assert CONFIG_ENV not in os.environ


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"configuration file .*nope\.toml does not exist"):
        load_config()


def test_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[organisation\nid = acme\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        load_config(path)
    assert str(path) in str(caught.value)
