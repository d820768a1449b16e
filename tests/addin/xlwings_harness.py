"""xlwings' real Windows UDF machinery, importable on Linux for tests, without Excel.

`xlwings.udfs` (the decorators `xlfunc`/`xlarg`, `call_udf`, the VBA wrapper generator) and
`xlwings._xlwindows` (the Excel engine that cleans the values COM hands over) only import
on Windows because they import pywin32. Here pywin32's modules, `winreg` and ctypes' Windows
DLL loaders are replaced by stand-ins just long enough for the test session, so the code
Excel would run turns host values into arguments and results into cell values exactly as
on Windows: blank cells, error codes (-2146826246 is #N/A), pywintypes datetimes, 2-D ranges.

Use the session fixture `xlwings_windows` (import it into the test module and request it),
then the helpers `udfs()`, `call_like_excel()` and `vba_for()`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import importlib
import io
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

# What COM passes for an omitted Optional argument (DISP_E_PARAMNOTFOUND); xlwings' call_udf tests for it.
MISSING = -2147352572
# Excel cell error values as COM passes them inside a range (pywin32 hands them over as ints).
XL_ERRORS = {
    "#DIV/0!": -2146826281,
    "#N/A": -2146826246,
    "#NAME?": -2146826259,
    "#NULL!": -2146826288,
    "#NUM!": -2146826252,
    "#REF!": -2146826265,
    "#VALUE!": -2146826273,
}

_STUB_MODULES = (
    "pythoncom",
    "pywintypes",
    "win32api",
    "win32con",
    "win32gui",
    "win32process",
    "win32timezone",
    "win32com",
    "win32com.client",
    "win32com.client.dynamic",
    "win32com.server",
    "win32com.server.util",
    "winreg",
)
_XLWINGS_MODULES = ("xlwings._xlwindows", "xlwings._win32patch", "xlwings.udfs", "xlwings.com_server")
_CTYPES_LOADERS = ("windll", "oledll", "PyDLL")


class TimeType(dt.datetime):
    """pywintypes.TimeType: what pywin32 gives for a date cell (a datetime subclass, in UTC)."""


class ComError(Exception):
    """pywintypes.com_error."""


def com_date(year: int, month: int, day: int) -> TimeType:
    """A date cell as pywin32 hands it to Python: a pywintypes time at midnight, tz-aware UTC."""
    return TimeType(year, month, day, tzinfo=dt.UTC)


def _stand_ins() -> dict[str, types.ModuleType]:
    modules: dict[str, Any] = {name: mock.MagicMock(name=name) for name in _STUB_MODULES}
    modules["pythoncom"].__file__ = "pythoncom311.dll"
    pywintypes = modules["pywintypes"]
    pywintypes.TimeType = TimeType
    pywintypes.com_error = ComError
    pywintypes.error = ComError
    modules["win32timezone"].TimeZoneInfo.utc.return_value = dt.UTC
    modules["win32com"].client = modules["win32com.client"]
    modules["win32com"].server = modules["win32com.server"]
    modules["win32com.client"].dynamic = modules["win32com.client.dynamic"]
    modules["win32com.server"].util = modules["win32com.server.util"]
    return modules


_loaded: dict[str, Any] = {}


@pytest.fixture(scope="session")
def xlwings_windows() -> Iterator[types.ModuleType]:
    """Import xlwings.udfs and the Windows engine under stand-ins; undo it all at the end of the session."""
    import xlwings
    import xlwings.main

    saved_modules = {name: sys.modules.get(name) for name in (*_STUB_MODULES, *_XLWINGS_MODULES)}
    saved_ctypes = {name: getattr(ctypes, name) for name in _CTYPES_LOADERS if hasattr(ctypes, name)}
    saved_attrs = {name: getattr(xlwings, name) for name in ("_xlwindows", "udfs") if hasattr(xlwings, name)}
    engines = xlwings.engines
    saved_engines = (list(engines.engines), dict(engines.engines_by_name), engines.active)
    try:
        sys.modules.update(_stand_ins())
        for name in _CTYPES_LOADERS:
            setattr(ctypes, name, mock.MagicMock(name=f"ctypes.{name}"))
        xlwindows = importlib.import_module("xlwings._xlwindows")
        xlwings_udfs = importlib.import_module("xlwings.udfs")
        engines.add(xlwings.main.Engine(impl=xlwindows.engine))
        _loaded.update(xlwindows=xlwindows, udfs=xlwings_udfs, conversion=xlwings.conversion)
        yield xlwings_udfs
    finally:
        _loaded.clear()
        engines.engines[:], engines.active = saved_engines[0], saved_engines[2]
        engines.engines_by_name.clear()
        engines.engines_by_name.update(saved_engines[1])
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name in _CTYPES_LOADERS:
            if name in saved_ctypes:
                setattr(ctypes, name, saved_ctypes[name])
            elif hasattr(ctypes, name):
                delattr(ctypes, name)
        for name in ("_xlwindows", "udfs"):
            if name in saved_attrs:
                setattr(xlwings, name, saved_attrs[name])
            elif hasattr(xlwings, name):
                delattr(xlwings, name)


def _xlwings(name: str) -> Any:
    if name not in _loaded:
        raise RuntimeError("request the xlwings_windows fixture before using the xlwings harness")
    return _loaded[name]


def udfs() -> dict[str, Callable[..., Any]]:
    """Every registry function bound as a UDF with xlwings' own Windows decorators, by Excel name."""
    from addin.udfs import bind_all

    xlwings_udfs = _xlwings("udfs")
    return bind_all(func=xlwings_udfs.xlfunc, arg=xlwings_udfs.xlarg)


def call_like_excel(udf: Callable[..., Any], *raw_args: Any) -> Any:
    """Call `udf` as xlwings.udfs.call_udf does for values COM passes (not Range objects).

    The VBA wrapper always passes every argument, an omitted Optional one as MISSING; a
    missing argument becomes the UDF's 'optional' default, any other is cleaned by
    `conversion.read(None, arg, options)` (the Excel engine's value cleaning), and the result
    goes through `conversion.write(ret, None, options)` as it would on its way to the cell.
    """
    conversion = _xlwings("conversion")
    info = udf.__xlfunc__  # type: ignore[attr-defined]
    args_info, ret_info = info["args"], info["ret"]
    if len(raw_args) > len(args_info):
        raise TypeError(f"{info['name']} takes {len(args_info)} arguments in Excel")
    args = [*raw_args, *[MISSING] * (len(args_info) - len(raw_args))]
    for i, arg in enumerate(args):
        arg_info = args_info[min(i, len(args_info) - 1)]
        if isinstance(arg, int) and arg == MISSING:
            args[i] = arg_info.get("optional", None)
        else:
            args[i] = conversion.read(None, arg, arg_info["options"])
    ret = udf(*args)
    return conversion.write(ret, None, ret_info["options"])


class _Workbook:
    """The one attribute of a COM Workbook generate_vba_wrapper reads."""

    Name = "Plansheet.xlsm"


def vba_for(functions: dict[str, Callable[..., Any]], module_name: str = "addin.udfs") -> str:
    """The VBA module xlwings' Import Functions would write into the workbook for `functions`."""
    xlwings_udfs = _xlwings("udfs")
    module = types.ModuleType(module_name)
    for name, function in functions.items():
        setattr(module, name, function)
    out = io.StringIO()
    xlwings_udfs.generate_vba_wrapper(module_name, module, out, _Workbook())
    return out.getvalue()
