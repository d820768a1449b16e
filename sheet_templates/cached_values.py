"""Give every formula cell of a written workbook its value, so readers that do not calculate see figures, not zeros.

openpyxl writes a formula with an empty value (`<c r="N2"><f>SUM(B2:M2)</f><v/></c>`): Excel
desktop recalculates on opening, but previews (Outlook, Google Drive, phones), pandas, Power Query
and Power BI read the cached value. `fill(path, values)` rewrites each sheet's cells in place with
the value Plansheet computed for it (the same figure the service shows); a formula cell without
one is an error, so no workbook leaves with a blank. The workbook keeps `fullCalcOnLoad`, asking
Excel to recalculate on load all the same.
"""

from __future__ import annotations

import math
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
# A formula cell as openpyxl writes it: its attributes, the formula, an empty value.
_FORMULA_CELL = re.compile(rb'<c r="([A-Z]{1,3}[0-9]{1,7})"([^>]*)><f>(.*?)</f><v ?/></c>', re.DOTALL)
_CALC_PR = re.compile(rb"<calcPr\b[^>]*/>")


class MissingValue(ValueError):
    """A formula cell the caller gave no value for."""


def fill(path: Path, values: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write `values[sheet][cell]` (a number, text or bool) as the cached value of each formula cell of `path`.

    Every formula cell must have a value; cells that hold no formula are left as they are, and a
    value for a cell without a formula is an error too (the caller's idea of the sheet is wrong).
    """
    with zipfile.ZipFile(path) as book:
        parts = _sheet_parts(book)
        unknown = sorted(set(values) - set(parts))
        if unknown:
            raise MissingValue(f"the workbook has no sheet {', '.join(unknown)}")
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".xlsx", delete=False) as handle:
            temporary = Path(handle.name)
        try:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as out:
                by_part = {part: name for name, part in parts.items()}
                for item in book.infolist():
                    data = book.read(item.filename)
                    if item.filename in by_part:
                        name = by_part[item.filename]
                        data = _filled(data, name, values.get(name, {}))
                    elif item.filename == "xl/workbook.xml":
                        data = _recalculate_on_load(data)
                    out.writestr(item, data)
            shutil.move(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return path


def _sheet_parts(book: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part in the package ("xl/worksheets/sheet2.xml")."""
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_RELS}Relationship")}
    out = {}
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        target = targets[sheet.get(_REL_ID)]
        out[sheet.get("name")] = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
    return out


def _filled(data: bytes, sheet: str, values: Mapping[str, Any]) -> bytes:
    missing: list[str] = []
    seen: set[str] = set()

    def one(match: re.Match[bytes]) -> bytes:
        cell, attributes, formula = match.group(1).decode(), match.group(2), match.group(3)
        seen.add(cell)
        if cell not in values:
            missing.append(cell)
            return match.group(0)
        kind, text = _cached(values[cell], f"{sheet}!{cell}")
        attributes = re.sub(rb'\st="[^"]*"', b"", attributes) + (f' t="{kind}"'.encode() if kind else b"")
        return b'<c r="%s"%s><f>%s</f><v>%s</v></c>' % (match.group(1), attributes, formula, text.encode())

    data = _FORMULA_CELL.sub(one, data)
    if missing:
        shown = ", ".join(f"{sheet}!{c}" for c in missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise MissingValue(f"no value computed for the formula cells {shown}")
    extra = sorted(set(values) - seen)
    if extra:
        raise MissingValue(f"values given for cells without a formula: {', '.join(f'{sheet}!{c}' for c in extra[:5])}")
    return data


def _cached(value: Any, where: str) -> tuple[str | None, str]:
    """(the cell's type attribute, the value's text) of a cached formula result."""
    if isinstance(value, bool):
        return "b", "1" if value else "0"
    if isinstance(value, int):
        return None, str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MissingValue(f"{where}: {value} is not a value a cell can hold")
        return None, repr(value)
    if isinstance(value, str):
        return "str", escape(value)
    raise MissingValue(f"{where}: a formula's value is a number, text or true/false, not {type(value).__name__}")


def _recalculate_on_load(data: bytes) -> bytes:
    """The workbook asks Excel to recalculate every formula when it opens (the cached values stay for other readers)."""
    if _CALC_PR.search(data):
        return _CALC_PR.sub(b'<calcPr calcId="191029" fullCalcOnLoad="1"/>', data, count=1)
    return data.replace(b"</workbook>", b'<calcPr calcId="191029" fullCalcOnLoad="1"/></workbook>')
