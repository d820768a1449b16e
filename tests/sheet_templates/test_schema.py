from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal

import pytest

from sheet_templates import ConfigError, build_schema
from sheet_templates.cells import column_letter
from sheet_templates.config import KpiSpec


def described(schema) -> dict[str, dict]:
    return {c["name"]: c for c in schema.describe()["columns"]}


def test_describe_lists_every_column_in_sheet_order_with_its_letter(schema) -> None:
    columns = schema.describe()["columns"]
    assert [c["column"] for c in columns] == [column_letter(i) for i in range(1, len(columns) + 1)]
    assert [c["name"] for c in columns[:14]] == [
        "line_id", "region", "business_unit", "team", "campaign", "campaign_code", "crm_campaign_id", "channel",
        "activity", "owner", "currency", "status", "start_date", "end_date",
    ]  # fmt: skip
    assert [c["label"] for c in columns[14:26]] == [
        "Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026", "Jul 2026",
        "Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026", "Dec 2026", "Jan 2027",
    ]  # fmt: skip
    assert [c["name"] for c in columns[26:]] == [
        "committed", "actual", "leads", "mqls", "pipeline", "revenue", "notes",
        "planned_total", "variance", "q1_reporting", "q2_reporting", "q3_reporting", "q4_reporting",
    ]  # fmt: skip
    assert len({c["label"] for c in columns}) == len(columns)  # the reader maps headers to columns by label


def test_describe_says_what_is_required_and_what_is_allowed(schema, config) -> None:
    cols = described(schema)
    required = {name for name, c in cols.items() if c["required"]}
    assert required == {
        "line_id",
        "region",
        "business_unit",
        "team",
        "campaign",
        "channel",
        "owner",
        "currency",
        "status",
    }
    assert cols["region"]["allowed"] == ["NA", "EMEA", "APAC", "LATAM"]
    assert cols["business_unit"]["allowed"] == list(config.business_units)
    assert cols["channel"]["allowed"] == list(config.channels)
    assert cols["currency"]["allowed"] == ["USD", "EUR", "GBP", "JPY", "BRL"]
    assert cols["status"]["allowed"] == list(config.statuses)
    assert cols["campaign"]["allowed"] is None
    assert (cols["line_id"]["column"], cols["line_id"]["type"]) == ("A", "id")
    assert (cols["channel"]["column"], cols["channel"]["type"]) == ("H", "choice")
    assert (cols["start_date"]["column"], cols["start_date"]["type"]) == ("M", "date")
    assert "01 Feb 2026 to 31 Jan 2027" in cols["start_date"]["help"]
    assert (cols["m01"]["column"], cols["m01"]["type"], cols["m01"]["label"]) == ("O", "money", "Feb 2026")
    assert (cols["m12"]["column"], cols["m12"]["label"]) == ("Z", "Jan 2027")
    assert (cols["leads"]["type"], cols["pipeline"]["type"]) == ("count", "money")


def test_describe_gives_formulas_for_the_first_data_row(schema) -> None:
    cols = described(schema)
    assert {name for name, c in cols.items() if not c["input"]} == {
        "planned_total", "variance", "q1_reporting", "q2_reporting", "q3_reporting", "q4_reporting",
    }  # fmt: skip
    assert cols["planned_total"] | {"help": ""} == {
        "name": "planned_total",
        "label": "Planned total",
        "type": "formula",
        "allowed": None,
        "required": False,
        "column": "AH",
        "input": False,
        "formula": "=SUM(O2:Z2)",
        "help": "",
    }
    assert cols["variance"]["formula"] == "=AH2-AB2"  # planned total minus actual spend
    assert cols["q1_reporting"]["label"] == "Q1 planned (USD)"
    # The money grain: each month converted at the plan rate and rounded to the cent, then summed.
    rate = "VLOOKUP(K2,ps_fx_rates,2,FALSE)"
    q1 = f"=IFERROR(ROUND(O2*{rate},2)+ROUND(P2*{rate},2)+ROUND(Q2*{rate},2),0)"
    assert cols["q1_reporting"]["formula"] == q1
    assert cols["q4_reporting"]["formula"] == f"=IFERROR(ROUND(X2*{rate},2)+ROUND(Y2*{rate},2)+ROUND(Z2*{rate},2),0)"
    assert cols["line_id"]["formula"] is None


def test_describe_is_json_with_the_template_identity(schema) -> None:
    data = json.loads(json.dumps(schema.describe()))
    assert data["template_id"] == "plansheet.plan/acme"
    assert re.fullmatch(r"1\.[0-9a-f]{10}", data["template_version"])
    assert data["template_version"] == schema.version
    assert (data["fiscal_year"], data["reporting_currency"], data["sheet"], data["header_row"]) == (
        2027,
        "USD",
        "Plan",
        1,
    )
    assert data["fiscal_months"][0] == {"name": "m01", "label": "Feb 2026", "quarter": 1}
    assert data["fiscal_months"][11] == {"name": "m12", "label": "Jan 2027", "quarter": 4}


def test_version_is_stable_for_the_same_configuration(config) -> None:
    assert build_schema(config).version == build_schema(dataclasses.replace(config)).version


@pytest.mark.parametrize(
    "change",
    [
        {"channels": ("Events", "Paid Search", "Paid Social", "Content", "Webinars", "Partners", "Email", "ABM", "TV")},
        {"statuses": ("Planned", "Committed", "Done")},
        {"regions": ("NA", "EMEA", "APAC")},
        {"plan_rates": {"USD": Decimal(1), "EUR": Decimal("1.08")}},  # the currency dropdown changes
        {"fiscal_year": 2028},
        {"start_month": 1},
        {"extra_kpis": (KpiSpec("sqls", "Expected SQLs", "count"),)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_version_changes_when_the_shape_of_a_plan_changes(config, change) -> None:
    assert build_schema(dataclasses.replace(config, **change)).version != build_schema(config).version


def test_version_ignores_what_does_not_change_a_filled_plan(config) -> None:
    """Allocations and rate values live in the Summary and Lists sheets, not in what a planner fills."""
    other = dataclasses.replace(
        config,
        allocations={"NA": {"Q1": Decimal(1)}},
        plan_rates={**config.plan_rates, "EUR": Decimal("1.10")},
        org_name="Acme Inc.",
    )
    assert build_schema(other).version == build_schema(config).version


def test_extra_kpis_come_after_the_built_in_kpis_and_before_notes(config) -> None:
    kpis = (KpiSpec("sqls", "Expected SQLs", "count"), KpiSpec("cpl", "Cost per lead", "money"))
    schema = build_schema(dataclasses.replace(config, extra_kpis=kpis))
    names = [c.name for c in schema.columns]
    assert names[names.index("revenue") :][:4] == ["revenue", "sqls", "cpl", "notes"]
    cols = described(schema)
    assert (cols["sqls"]["column"], cols["sqls"]["type"], cols["sqls"]["label"]) == ("AG", "count", "Expected SQLs")
    assert (cols["cpl"]["column"], cols["cpl"]["type"]) == ("AH", "money")
    assert cols["notes"]["column"] == "AI"
    # The formula columns move right and still point at the right columns.
    assert (cols["planned_total"]["column"], cols["planned_total"]["formula"]) == ("AJ", "=SUM(O2:Z2)")
    assert cols["variance"]["formula"] == "=AJ2-AB2"


def test_a_kpi_may_not_reuse_a_built_in_column_name(config) -> None:
    kpis = (KpiSpec("leads", "More leads", "count"),)
    with pytest.raises(ConfigError, match="reuses the name of a built-in column"):
        build_schema(dataclasses.replace(config, extra_kpis=kpis))


def test_schema_lookups(schema) -> None:
    assert schema["channel"].letter == "H"
    assert "channel" in schema
    assert "colour" not in schema
    assert len(schema.month_columns) == 12
    assert [c.quarter for c in schema.month_columns] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert all(c.is_input for c in schema.input_columns)
    assert len(schema.input_columns) + len(schema.formula_columns) == len(schema.columns)
    assert schema.dimension_names == (
        "region", "business_unit", "team", "campaign", "campaign_code", "crm_campaign_id", "channel", "activity",
        "owner", "currency", "status",
    )  # fmt: skip
    meta = schema.meta_for("EMEA")
    assert (meta.template_id, meta.version, meta.region, meta.fiscal_year) == (
        "plansheet.plan/acme",
        schema.version,
        "EMEA",
        2027,
    )
