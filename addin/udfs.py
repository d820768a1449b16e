"""Desktop Excel bindings: every registry function as an xlwings UDF (open-source xlwings only).

The UDFs are generated from the function catalogue (`addin.sheet_functions.REGISTRY` and the
live functions of `addin.live`, which ask the sync service), so Excel sees exactly the
registry's names, arguments and help. Ranges arrive as lists of rows (`ndim=2`), results
are lists of rows that spill as dynamic arrays, and a failure comes back as a cell text
such as `#VALUE! by: "colour" is not a dimension`, never a traceback.

In Excel: xlwings ribbon > UDF Modules = `addin.udfs`, then Import Functions
(see docs/excel-desktop.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import xlwings as xw

from addin.hostvalues import ExcelError
from addin.live import catalog
from addin.registry import Shape, SheetFunction

CATEGORY = "Plansheet"


def to_excel(result: Any) -> Any:
    """A core result as xlwings returns it to a cell: errors as their text, NaN as blank."""
    if isinstance(result, ExcelError):
        return str(result)
    return result


def bind(function: SheetFunction, func: Any = None, arg: Any = None) -> Callable[..., Any]:
    """An xlwings UDF for `function`, decorated with `func`/`arg` (xlwings' own by default)."""
    func = func or xw.func
    arg = arg or xw.arg

    def udf(*values: Any) -> Any:
        return to_excel(function.call(*values))

    empty = inspect.Parameter.empty
    udf.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None if a.optional else empty)
            for a in function.args
        ]
    )
    udf.__name__ = udf.__qualname__ = function.name
    udf.__doc__ = function.help
    udf.__module__ = __name__
    udf.__annotations__ = {}
    for a in function.args:
        # err_to_str: a cell showing #N/A arrives as "#N/A" (and is reported), not as a blank
        options = {"ndim": 2, "err_to_str": True} if a.shape is Shape.MATRIX else {"err_to_str": True}
        udf = arg(a.name, doc=a.help, **options)(udf)
    return func(category=CATEGORY, volatile=function.volatile)(udf)


def bind_all(func: Any = None, arg: Any = None) -> dict[str, Callable[..., Any]]:
    """Every registry function as a UDF, by Excel name."""
    return {f.name: bind(f, func, arg) for f in catalog()}


UDFS = bind_all()
globals().update(UDFS)  # xlwings finds UDFs as attributes of this module, by their Excel names
__all__ = sorted(UDFS)
