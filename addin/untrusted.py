"""The one way Plansheet opens a workbook it did not write: inspected first, then one sheet read.

Every upload (a plan, a scenario workbook, a finance or CRM export) comes through `open_untrusted`:
`addin.safety` inspects the package in bounded memory and time (zip bombs, macros, DTDs, cells
too far out), then python-calamine reads the one sheet asked for. Anything unreadable ends in
`UnreadableWorkbook`, never in the reader's own error.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from python_calamine import CalamineWorkbook

from addin.issues import Rule, UnreadableWorkbook
from addin.safety import DEFAULT_LIMITS, FIRST_SHEET, Limits, Package, inspect_package

__all__ = ["FIRST_SHEET", "OpenedWorkbook", "open_untrusted"]


@dataclass(frozen=True)
class OpenedWorkbook:
    """What was read: the inspected package, the sheet read and its cells (a dense grid, blanks as "")."""

    package: Package
    sheet: str
    grid: list[list[Any]]


@contextmanager
def _on_disk(source: bytes | str | os.PathLike[str]) -> Iterator[str]:
    """A path to the workbook: its own, or a private temporary file holding the uploaded bytes."""
    if not isinstance(source, bytes):
        yield os.fspath(source)
        return
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(source)
        yield path
    finally:
        os.unlink(path)


def open_untrusted(
    source: bytes | str | os.PathLike[str],
    *,
    sheet: str,
    display_name: str,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenedWorkbook:
    """Inspect the workbook (`addin.safety`), then read `sheet` (FIRST_SHEET: whichever comes first).

    Raises `UnreadableWorkbook` for a file that is not a safe, readable xlsx with that sheet.
    """
    with _on_disk(source) as path:
        package = inspect_package(path, plan_sheet=sheet, limits=limits, display_name=display_name)
        name = package.sheet_names[0] if sheet == FIRST_SHEET else sheet
        try:
            workbook = CalamineWorkbook.from_path(path)
            try:
                grid = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
            finally:
                workbook.close()
        except Exception as exc:  # the Rust reader's errors have no stable Python type
            message = f"{display_name} is damaged and could not be read ({exc})"
            raise UnreadableWorkbook(Rule.CORRUPT, message, file=display_name) from exc
    return OpenedWorkbook(package, name, grid)
