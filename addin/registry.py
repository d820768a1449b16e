"""The one registry of functions Plansheet exposes to spreadsheets, whatever the host.

Each `SheetFunction` records its Excel name (`PS_...`), arguments (type, whether a range,
optional with which default), result shape, help and volatility. The xlwings bindings are
generated from it, and so is the custom-functions metadata Office.js reads; the HTTP
function service calls the same entries. A streaming function (`stream`) is one Office.js keeps
open and updates when the service's data change; other hosts treat it by its `volatile` flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from addin.hostvalues import ExcelError

_NAME = re.compile(r"PS_[A-Z0-9_]+")  # valid in VBA, Office.js ids and Apps Script alike


class ArgType(StrEnum):
    """What a spreadsheet passes for an argument (Office.js custom-function types)."""

    NUMBER = "number"
    TEXT = "string"
    BOOLEAN = "boolean"
    ANY = "any"


class Shape(StrEnum):
    SCALAR = "scalar"
    MATRIX = "matrix"


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a spreadsheet function."""

    name: str
    help: str
    type: ArgType = ArgType.ANY
    shape: Shape = Shape.MATRIX  # a range (matrix) or a single value (scalar)
    optional: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class SheetFunction:
    """A function callable from a cell: host values in, a 2-D array (or an error) out."""

    name: str
    help: str
    args: tuple[Arg, ...]
    impl: Callable[..., Any]
    result: Shape = Shape.MATRIX
    volatile: bool = False
    example: str = ""
    stream: bool = False  # Office.js: the cell keeps its call open and takes new results as the data change

    def call(self, *values: Any) -> Any:
        """Call with host values in argument order; missing optional arguments take their defaults."""
        if len(values) > len(self.args):
            return ExcelError("#VALUE!", f"{self.name} takes at most {len(self.args)} arguments")
        filled = list(values) + [a.default for a in self.args[len(values) :]]
        for arg, value in zip(self.args, filled, strict=True):
            if value is None and not arg.optional:  # a blank cell or an empty argument, as a host passes it
                return ExcelError("#VALUE!", f"{self.name}: {arg.name} is required")
        return self.impl(
            *(a.default if v is None and a.optional else v for a, v in zip(self.args, filled, strict=True))
        )

    def metadata(self) -> dict[str, Any]:
        """The entry for the function in Office.js custom-functions metadata (functions.json)."""
        return {
            "id": self.name,
            "name": self.name,
            "description": self.help,
            "parameters": [
                {
                    "name": a.name,
                    "description": a.help,
                    "type": str(a.type),
                    "dimensionality": str(a.shape),
                    **({"optional": True} if a.optional else {}),
                }
                for a in self.args
            ],
            "result": {"type": "any", "dimensionality": str(self.result)},
            # Excel ignores volatile on a streaming function (Microsoft's metadata rules): say only stream.
            "options": {"stream": True} if self.stream else {"volatile": self.volatile},
        }


@dataclass
class Registry:
    """The functions by name, in the order they were registered."""

    functions: dict[str, SheetFunction] = field(default_factory=dict)

    def register(self, function: SheetFunction) -> SheetFunction:
        if not _NAME.fullmatch(function.name):
            raise ValueError(f"{function.name}: spreadsheet function names are PS_ and capitals, digits or _")
        if function.name in self.functions:
            raise ValueError(f"{function.name} is registered twice")
        seen_optional = False
        for arg in function.args:
            if seen_optional and not arg.optional:
                raise ValueError(f"{function.name}: required argument {arg.name} follows an optional one")
            seen_optional |= arg.optional
        self.functions[function.name] = function
        return function

    def __getitem__(self, name: str) -> SheetFunction:
        return self.functions[name.upper()]

    def __iter__(self):
        return iter(self.functions.values())

    def metadata(self) -> dict[str, Any]:
        """The whole functions.json document for an Office.js custom-functions add-in."""
        return {"functions": [f.metadata() for f in self]}
