"""The team plan as a Google spreadsheet: the Sheets API v4 request bodies that build it from the schema.

Pure data, no network: `create_body` is one `spreadsheets.create`, `setup_requests` one
`spreadsheets.batchUpdate`, whatever the number of rows. The sheet has the Excel template's
shape (same columns, header in row 1, same formulas), so a plan pulled from it is validated
by the same reader with the same A1 references. The template's identity (template id,
version, region, team, fiscal year) lives on a hidden sheet only the service account may
edit, and as developer metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sheet_templates.cells import column_letter
from sheet_templates.schema import FIRST_DATA_ROW, HEADER_ROW, LISTS_SHEET, PLAN_SHEET, ColumnType, PlanSchema

META_SHEET = "_plansheet"
PLAN_ID, LISTS_ID, META_ID = 1, 2, 3  # fixed sheet ids: requests can name them before the sheets exist
FX_RATES_NAME = "ps_fx_rates"
# "cycle" and "closed": a reforecast sheet's cycle and closed months ("m01,m02,m03"; blank in a plan sheet).
META_KEYS = ("template_id", "template_version", "region", "team", "fiscal_year", "cycle", "closed")
CLOSED_COLOUR = {"red": 0.867, "green": 0.922, "blue": 0.969}  # a closed month: actual spend, shown and protected
HEADER_COLOUR = {"red": 0.85, "green": 0.89, "blue": 0.95}
FORMULA_COLOUR = {"red": 0.93, "green": 0.93, "blue": 0.93}
NUMBER_FORMATS = {
    ColumnType.MONEY: {"type": "NUMBER", "pattern": "#,##0.00"},
    ColumnType.COUNT: {"type": "NUMBER", "pattern": "0"},
    ColumnType.DATE: {"type": "DATE", "pattern": "yyyy-mm-dd"},
}


def plan_range(schema: PlanSchema, rows: int) -> str:
    """The A1 range of the Plan sheet's header and `rows` line rows."""
    return f"{PLAN_SHEET}!A{HEADER_ROW}:{column_letter(len(schema.columns))}{HEADER_ROW + rows}"


def meta_range() -> str:
    return f"{META_SHEET}!A1:B{len(META_KEYS)}"


def meta_values(
    schema: PlanSchema, region: str, team: str, cycle: int | None = None, closed: Sequence[str] = ()
) -> dict[str, str]:
    meta = schema.meta_for(region)
    return {
        "template_id": meta.template_id,
        "template_version": meta.version,
        "region": meta.region,
        "team": team,
        "fiscal_year": str(meta.fiscal_year),
        "cycle": "" if cycle is None else str(int(cycle)),
        "closed": ",".join(closed),
    }


def reforecast_from_meta(meta: Mapping[str, str], schema: PlanSchema) -> tuple[tuple[str, ...], int | None]:
    """A reforecast sheet's closed months and cycle, as its metadata sheet holds them; ((), None) for a plan sheet."""
    named = {part.strip().lower() for part in str(meta.get("closed", "")).split(",")}
    closed = tuple(c.name for c in schema.month_columns if c.name in named)
    cycle = str(meta.get("cycle", "")).strip()
    return closed, int(cycle) if cycle.isdigit() else None


def create_body(schema: PlanSchema, title: str, rows: int) -> dict[str, Any]:
    """The `spreadsheets.create` body: the three sheets, sized, the Plan's header row frozen."""
    lists = [c for c in schema.columns if c.choices]
    list_rows = 1 + max([len(c.choices or ()) for c in lists] + [len(schema.config.plan_rates)])
    return {
        "properties": {"title": title, "locale": "en_US"},
        "sheets": [
            _sheet(PLAN_ID, PLAN_SHEET, 0, HEADER_ROW + rows, len(schema.columns), frozen=HEADER_ROW),
            _sheet(LISTS_ID, LISTS_SHEET, 1, list_rows, len(lists) + 3, hidden=True),
            _sheet(META_ID, META_SHEET, 2, len(META_KEYS), 2, hidden=True),
        ],
    }


def _sheet(
    sheet_id: int, title: str, index: int, rows: int, columns: int, *, frozen: int = 0, hidden: bool = False
) -> dict[str, Any]:
    grid: dict[str, Any] = {"rowCount": rows, "columnCount": columns}
    if frozen:
        grid["frozenRowCount"] = frozen
    return {
        "properties": {"sheetId": sheet_id, "title": title, "index": index, "hidden": hidden, "gridProperties": grid}
    }


def _cell(value: Any, fmt: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(value, bool):
        entered = {"boolValue": value}
    elif isinstance(value, int | float):
        entered = {"numberValue": value}
    elif isinstance(value, str) and value.startswith("="):
        entered = {"formulaValue": value}
    else:
        entered = {"stringValue": "" if value is None else str(value)}
    cell: dict[str, Any] = {"userEnteredValue": entered}
    if fmt:
        cell["userEnteredFormat"] = fmt
    return cell


def _grid_range(sheet_id: int, row0: int, row1: int, col0: int, col1: int) -> dict[str, int]:
    """A GridRange: zero-based, end-exclusive."""
    return {
        "sheetId": sheet_id,
        "startRowIndex": row0,
        "endRowIndex": row1,
        "startColumnIndex": col0,
        "endColumnIndex": col1,
    }


def setup_requests(
    schema: PlanSchema,
    region: str,
    team: str,
    rows: int,
    owner_email: str,
    editors: Sequence[str] = (),
    *,
    cycle: int | None = None,
    closed: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The one `batchUpdate` that makes an empty spreadsheet a plan template (constant size in API calls).

    Header, lists, metadata and formulas as cell data; dropdown and number validation; number
    formats; column widths; protected header, formula columns, Lists and metadata sheets (only
    `owner_email`, the service account, may edit them). A reforecast sheet (`closed` months of
    `cycle`) also has its closed months' cells tinted and protected: they show actual spend.
    """
    requests: list[dict[str, Any]] = []
    cols = schema.columns
    first, last = FIRST_DATA_ROW - 1, HEADER_ROW + rows  # zero-based data rows [first, last)
    header_fmt = {"textFormat": {"bold": True}, "backgroundColor": HEADER_COLOUR, "wrapStrategy": "WRAP"}
    requests.append(
        {
            "updateCells": {
                "rows": [{"values": [_cell(c.label, header_fmt) for c in cols]}],
                "fields": "userEnteredValue,userEnteredFormat",
                "start": {"sheetId": PLAN_ID, "rowIndex": HEADER_ROW - 1, "columnIndex": 0},
            }
        }
    )
    # Lists: one column per dropdown list, then the plan FX rates behind a named range the formulas use.
    lists = [c for c in cols if c.choices]
    depth = max([len(c.choices or ()) for c in lists] + [len(schema.config.plan_rates)])
    rates = list(schema.config.plan_rates.items())
    list_rows = [[c.label for c in lists] + ["", "Currency", f"Plan rate to {schema.config.reporting_currency}"]]
    for r in range(depth):
        row: list[Any] = [(c.choices[r] if r < len(c.choices or ()) else "") for c in lists]
        row += ["", rates[r][0] if r < len(rates) else "", float(rates[r][1]) if r < len(rates) else ""]
        list_rows.append(row)
    requests.append(_values(LISTS_ID, list_rows))
    rate_col = len(lists) + 1
    requests.append(
        {
            "addNamedRange": {
                "namedRange": {
                    "name": FX_RATES_NAME,
                    "range": _grid_range(LISTS_ID, 1, 1 + len(rates), rate_col, rate_col + 2),
                }
            }
        }
    )
    meta = meta_values(schema, region, team, cycle, closed)
    requests.append(_values(META_ID, [[k, meta[k]] for k in META_KEYS]))
    # Formulas in every line row (the Excel template's, which Sheets understands as they are).
    formulas = [c for c in cols if c.formula]
    for c in formulas:
        requests.append(
            {
                "updateCells": {
                    "rows": [
                        {"values": [_cell(c.formula.format(row=r + 1), {"backgroundColor": FORMULA_COLOUR})]}
                        for r in range(first, last)
                    ],
                    "fields": "userEnteredValue,userEnteredFormat.backgroundColor",
                    "start": {"sheetId": PLAN_ID, "rowIndex": first, "columnIndex": c.index - 1},
                }
            }
        )
    for c in cols:
        j = c.index - 1
        target = _grid_range(PLAN_ID, first, last, j, j + 1)
        if c.type in NUMBER_FORMATS:
            requests.append(
                {
                    "repeatCell": {
                        "range": target,
                        "cell": {"userEnteredFormat": {"numberFormat": NUMBER_FORMATS[c.type]}},
                        "fields": "userEnteredFormat.numberFormat",
                    }
                }
            )
        rule = _validation(c, lists)
        if rule:
            requests.append({"setDataValidation": {"range": target, "rule": rule}})
        requests.append(
            {
                "updateDimensionProperties": {
                    "range": {"sheetId": PLAN_ID, "dimension": "COLUMNS", "startIndex": j, "endIndex": j + 1},
                    "properties": {"pixelSize": int(c.width * 7 + 10)},
                    "fields": "pixelSize",
                }
            }
        )
    everyone = {"users": [owner_email]}
    protected = [
        ("the header row", _grid_range(PLAN_ID, 0, HEADER_ROW, 0, len(cols))),
        *((f"{c.label} (a formula)", _grid_range(PLAN_ID, first, last, c.index - 1, c.index)) for c in formulas),
        *(
            (
                f"{schema[m].label} (closed: actual spend)",
                _grid_range(PLAN_ID, first, last, schema[m].index - 1, schema[m].index),
            )
            for m in closed
        ),
    ]
    for m in closed:
        requests.append(
            {
                "repeatCell": {
                    "range": _grid_range(PLAN_ID, first, last, schema[m].index - 1, schema[m].index),
                    "cell": {"userEnteredFormat": {"backgroundColor": CLOSED_COLOUR}},
                    "fields": "userEnteredFormat.backgroundColor",
                }
            }
        )
    for description, target in protected:
        requests.append(
            {
                "addProtectedRange": {
                    "protectedRange": {
                        "range": target,
                        "description": f"Plansheet: {description}",
                        "warningOnly": False,
                        "editors": everyone,
                    }
                }
            }
        )
    for sheet_id, description in ((LISTS_ID, "dropdown lists and FX rates"), (META_ID, "template identity")):
        requests.append(
            {
                "addProtectedRange": {
                    "protectedRange": {
                        "range": {"sheetId": sheet_id},
                        "description": f"Plansheet: {description}",
                        "warningOnly": False,
                        "editors": everyone,
                    }
                }
            }
        )
    for key in (k for k in META_KEYS if meta[k]):
        requests.append(
            {
                "createDeveloperMetadata": {
                    "developerMetadata": {
                        "metadataKey": f"plansheet.{key}",
                        "metadataValue": meta[key],
                        "location": {"spreadsheet": True},
                        "visibility": "DOCUMENT",
                    }
                }
            }
        )
    del editors  # sharing is a Drive call, not part of the spreadsheet
    return requests


def _values(sheet_id: int, rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "updateCells": {
            "rows": [{"values": [_cell(v) for v in row]} for row in rows],
            "fields": "userEnteredValue",
            "start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": 0},
        }
    }


def _validation(col: Any, lists: list[Any]) -> dict[str, Any] | None:
    if col.choices:
        k = lists.index(col)
        letter = column_letter(k + 1)
        return {
            "condition": {
                "type": "ONE_OF_RANGE",
                "values": [{"userEnteredValue": f"={LISTS_SHEET}!${letter}$2:${letter}${1 + len(col.choices)}"}],
            },
            "inputMessage": f"Choose a {col.label.lower()} from the list",
            "strict": True,
            "showCustomUi": True,
        }
    if col.type in (ColumnType.MONEY, ColumnType.COUNT):
        return {
            "condition": {"type": "NUMBER_GREATER_THAN_EQ", "values": [{"userEnteredValue": "0"}]},
            "inputMessage": f"{col.label}: a number of zero or more",
            "strict": True,
        }
    if col.type is ColumnType.DATE:
        return {"condition": {"type": "DATE_IS_VALID"}, "inputMessage": f"{col.label}: a date", "strict": True}
    return None


def meta_from_grid(grid: Sequence[Sequence[Any]]) -> dict[str, str]:
    """The key/value pairs of the hidden metadata sheet as read back."""
    return {str(row[0]): str(row[1]) for row in grid if len(row) >= 2 and row[0] in META_KEYS}
