"""Recalculate workbooks with real LibreOffice Calc, headless, the way a user's spreadsheet app would.

openpyxl writes formulas without cached values, and Excel or LibreOffice may leave stale
cached values in a file. Tests that assert what a user sees therefore open the workbook
in LibreOffice with a throw-away profile set to always recalculate OOXML files on load,
save it as xlsx again, and read the values LibreOffice computed.

Read numbers with python-calamine (`sheet_values`); look for error values with openpyxl
(`formula_problems`), because calamine returns an error cell such as `#NAME?` as "".

`insert_rows_in_libreoffice` edits a workbook as a user would in LibreOffice (Insert > Rows,
values typed into cells) with a Basic macro, in a throw-away profile of its own too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from sync_service.documents.pdf import OfficeTimeout, office_command, run_office

SOFFICE = "soffice"
TIMEOUT_SECONDS = 180

# /org.openoffice.Office.Calc/Formula/Load: 0 = always recalculate, 1 = never, 2 = ask (the default profile
# keeps a file's cached results, which openpyxl leaves empty and another app may have left stale).
_RECALC_SETTINGS = ("OOXMLRecalcMode", "ODFRecalcMode")
_PROFILE_SETTINGS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    + "".join(
        f'<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="{name}" oor:op="fuse">'
        "<value>0</value></prop></item>\n"
        for name in _RECALC_SETTINGS
    )
    + "</oor:items>\n"
)


class LibreOfficeError(RuntimeError):
    """LibreOffice could not be run, timed out, or did not produce the converted file."""


def recalculate(path: Path, out_dir: Path, *, timeout: float = TIMEOUT_SECONDS) -> Path:
    """Open `path` in LibreOffice, recalculate every formula and save it as `out_dir/<name>.xlsx`."""
    return recalculate_many([path], out_dir, timeout=timeout)[0]


def recalculate_many(paths: Sequence[Path], out_dir: Path, *, timeout: float = TIMEOUT_SECONDS) -> list[Path]:
    """Recalculate several workbooks with one LibreOffice start (much faster than one start per file)."""
    paths = [Path(p).resolve() for p in paths]
    out_dir = Path(out_dir).resolve()
    outputs = [out_dir / (p.stem + ".xlsx") for p in paths]
    for source, target in zip(paths, outputs, strict=True):
        if not source.is_file():
            raise LibreOfficeError(f"{source} does not exist")
        if source == target:
            raise LibreOfficeError(f"{source} would be overwritten; choose another out_dir")
    if len(set(outputs)) != len(outputs):
        raise LibreOfficeError("two input files have the same name; they would overwrite each other in out_dir")
    soffice = shutil.which(SOFFICE)
    if soffice is None:
        raise LibreOfficeError(f"{SOFFICE} is not on PATH; install LibreOffice Calc (bash .ci/system-deps.sh)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for target in outputs:
        target.unlink(missing_ok=True)

    with tempfile.TemporaryDirectory(prefix="plansheet-lo-profile-") as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, encoding="utf-8")
        command = office_command(soffice, Path(profile), "xlsx:Calc Office Open XML", out_dir, paths)
        stdout, stderr, code = _run(command, timeout, cwd=out_dir)

    missing = [str(t) for t in outputs if not t.is_file()]
    if code != 0 or missing:
        raise LibreOfficeError(
            f"LibreOffice failed (exit {code}); missing output: {', '.join(missing) or 'none'}\n"
            f"command: {' '.join(command)}\nstdout: {stdout.strip()}\nstderr: {stderr.strip()}"
        )
    return outputs


def _run(command: list[str], timeout: float, cwd: Path) -> tuple[str, str, int]:
    """Run soffice in its own process group (the service's own runner) so a hung office can be ended."""
    try:
        code, stdout, stderr = run_office(command, timeout, cwd)
    except OfficeTimeout as exc:
        raise LibreOfficeError(f"{exc}\ncommand: {' '.join(command)}\n{exc.said}") from None
    return stdout, stderr, code


def sheet_values(path: Path, sheet: str) -> list[list[Any]]:
    """The values of a sheet as rows of Python values (blank cells are "")."""
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def formula_problems(path: Path) -> list[str]:
    """Every formula cell of a recalculated workbook whose value is an error or missing, as 'Sheet!A1: ...'."""
    formulas = openpyxl.load_workbook(path)
    values = openpyxl.load_workbook(path, data_only=True)
    problems = []
    for ws in formulas.worksheets:
        computed = values[ws.title]
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type != "f":
                    continue
                value = computed[cell.coordinate]
                where = f"{ws.title}!{cell.coordinate} ({cell.value})"
                if value.value is None:
                    problems.append(f"{where}: no value, the formula was not calculated")
                elif value.data_type == "e" or (isinstance(value.value, str) and value.value.startswith(("#", "Err:"))):
                    problems.append(f"{where}: {value.value}")
    return problems


def cached_differences(written: Path, recalculated: Path, *, skip: Sequence[str] = ()) -> list[str]:
    """Every formula cell whose value as written (what previews, pandas and Power BI read) is not LibreOffice's.

    Numbers agree to the cent; text exactly. A formula cell written without a value is a difference
    too. `skip` names formulas LibreOffice cannot compute (the add-in's PS_ functions) by prefix.
    """
    formulas = openpyxl.load_workbook(written)
    cached = openpyxl.load_workbook(written, data_only=True)
    computed = openpyxl.load_workbook(recalculated, data_only=True)
    out = []
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                text = str(getattr(cell.value, "text", cell.value))  # an array formula is an object with .text
                if cell.data_type != "f" or text.removeprefix("=").startswith(tuple(skip)):
                    continue
                kept, fresh = cached[ws.title][cell.coordinate].value, computed[ws.title][cell.coordinate].value
                where = f"{ws.title}!{cell.coordinate}"
                if kept is None:
                    out.append(f"{where}: written without a value; LibreOffice computes {fresh!r}")
                elif isinstance(fresh, int | float) and not isinstance(fresh, bool):
                    if not isinstance(kept, int | float) or round(kept * 100) != round(fresh * 100):
                        out.append(f"{where}: written {kept!r}, LibreOffice computes {fresh!r}")
                elif kept != fresh:
                    out.append(f"{where}: written {kept!r}, LibreOffice computes {fresh!r}")
    return out


def formula_count(path: Path) -> int:
    """How many formula cells a workbook has (so a test can say it compared some)."""
    book = openpyxl.load_workbook(path)
    return sum(cell.data_type == "f" for ws in book.worksheets for row in ws.iter_rows() for cell in row)


# Inserts rows into the Plan sheet the way Insert > Rows does (references and names move), types
# values into cells, recalculates and saves as xlsx. Inputs come from the environment: PS_SOURCE,
# PS_TARGET, PS_AT (the sheet row to insert above), PS_COUNT, PS_CELLS ("A4=text;N4=#12.5;...",
# "#" marks a number). Any failure is written to PS_TARGET.error, since a headless office has no one
# to show a dialog to.
_INSERT_ROWS_MACRO = """Sub InsertRows
    On Error GoTo Failed
    stage = "open"
    Dim opening(0) As New com.sun.star.beans.PropertyValue
    opening(0).Name = "Hidden"
    opening(0).Value = True
    doc = StarDesktop.loadComponentFromURL(ConvertToURL(Environ("PS_SOURCE")), "_blank", 0, opening())
    stage = "insert rows"
    sheet = doc.Sheets.getByName("Plan")
    sheet.Rows.insertByIndex(CLng(Environ("PS_AT")) - 1, CLng(Environ("PS_COUNT")))
    stage = "type values"
    For Each item In Split(Environ("PS_CELLS"), ";")
        If item <> "" Then
            parts = Split(item, "=")
            cell = sheet.getCellRangeByName(parts(0))
            If Left(parts(1), 1) = "#" Then
                cell.setValue(Val(Mid(parts(1), 2)))
            Else
                cell.setString(parts(1))
            End If
        End If
    Next item
    stage = "recalculate and save"
    doc.calculateAll()
    Dim saving(0) As New com.sun.star.beans.PropertyValue
    saving(0).Name = "FilterName"
    saving(0).Value = "Calc Office Open XML"
    doc.storeToURL(ConvertToURL(Environ("PS_TARGET")), saving())
    doc.close(True)
    StarDesktop.terminate()
    Exit Sub
Failed:
    f = FreeFile
    Open Environ("PS_TARGET") & ".error" For Output As #f
    Print #f, stage & ": " & Error$
    Close #f
    StarDesktop.terminate()
End Sub
"""


def insert_rows_in_libreoffice(source: Path, target: Path, at: int, count: int, cells: dict[str, Any]) -> Path:
    """Insert `count` rows above Plan row `at` in real LibreOffice, type `cells` (A1 -> value), recalculate, save."""
    typed = ";".join(
        f"{ref}=#{value}" if isinstance(value, int | Decimal) else f"{ref}={value}" for ref, value in cells.items()
    )
    assert not any(c in str(v) for v in cells.values() for c in ";="), "values may not contain ; or ="
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plansheet-lo-macro-") as profile:
        office = [
            "soffice",
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nolockcheck",
            "--nologo",
        ]
        # The first start writes the profile, including an empty Standard.Module1; then the macro goes in.
        _office([*office, "--terminate_after_init"], os.environ.copy())
        module = Path(profile) / "user" / "basic" / "Standard" / "Module1.xba"
        module.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1"'
            f' script:language="StarBasic">{escape(_INSERT_ROWS_MACRO)}</script:module>\n',
            encoding="utf-8",
        )
        env = os.environ | {
            "PS_SOURCE": str(source.resolve()),
            "PS_TARGET": str(target.resolve()),
            "PS_AT": str(at),
            "PS_COUNT": str(count),
            "PS_CELLS": typed,
        }
        stderr = _office([*office, "macro:///Standard.Module1.InsertRows"], env)
    failure = target.with_name(target.name + ".error")
    assert not failure.exists(), failure.read_text()
    assert target.is_file(), f"LibreOffice wrote nothing: {stderr}"
    return target


def _office(command: list[str], env: dict[str, str]) -> str:
    """Run LibreOffice in its own process group, so a hung office and its helpers can all be stopped."""
    try:
        return run_office(command, TIMEOUT_SECONDS, env=env)[2]
    except OfficeTimeout:
        pytest.fail(f"LibreOffice did not finish within {TIMEOUT_SECONDS} s: {' '.join(command)}")
