"""What `pip install plansheet` gets: every package module is shipped, and everything they import is declared.

The modules are read, not imported, so an import inside a function (most of the command line's) counts too.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES: list[str] = PYPROJECT["tool"]["setuptools"]["packages"]
FIRST_PARTY = {name.split(".")[0] for name in PACKAGES}

# Distributions whose import name is not their name with "-" as "_" (names as normalised by `_normalise`).
IMPORT_NAMES = {
    "python-calamine": "python_calamine",
    "google-auth": "google",
    "pyyaml": "yaml",
    "pillow": "PIL",
    "beautifulsoup4": "bs4",
    "scikit-learn": "sklearn",
    "python-dateutil": "dateutil",
}


def _normalise(distribution: str) -> str:
    """A distribution's name as PEP 503 compares them: lower case, runs of '-', '_' and '.' as one '-'."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _import_name(requirement: str) -> str:
    """The module a requirement such as "psycopg[binary]>=3.2" provides: psycopg."""
    name = _normalise(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


DECLARED = {_import_name(r) for r in PYPROJECT["project"]["dependencies"]}
# Development packages of this repository (devtools/), installed by `make`, never by `pip install plansheet`:
# a package module may import one only where it is optional (the demo's Google part).
DEVELOPMENT_ONLY = {"sheets_standin"}


def _modules() -> list[Path]:
    """Every module of every package the distribution lists (the data-only ones have none)."""
    return sorted(p for package in PACKAGES for p in (ROOT / package.replace(".", "/")).glob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in `path`, at any depth (functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _third_party(top: str) -> bool:
    return top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__"


def test_every_package_folder_is_listed_so_it_is_installed() -> None:
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in FIRST_PARTY
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert sorted(on_disk - set(PACKAGES)) == []
    data_only = set(PYPROJECT["tool"]["setuptools"]["package-data"]) - on_disk  # folders of files the code reads
    assert all((ROOT / p.replace(".", "/") / "__init__.py").is_file() for p in set(PACKAGES) - data_only)
    assert all(not list((ROOT / p.replace(".", "/")).glob("*.py")) for p in data_only)


def test_every_third_party_import_is_a_declared_dependency() -> None:
    undeclared = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in _modules()
        for line, top in _imports(path)
        if _third_party(top) and top not in DECLARED | DEVELOPMENT_ONLY
    ]
    hint = "declare in pyproject.toml [project] dependencies (or map in IMPORT_NAMES):"
    assert not undeclared, "\n".join([hint, *undeclared])


def test_no_package_module_imports_the_tests() -> None:
    assert [
        f"{path.relative_to(ROOT)}:{line}" for path in _modules() for line, top in _imports(path) if top == "tests"
    ] == []


@pytest.mark.parametrize(
    ("requirement", "module"),
    [
        ("psycopg[binary]>=3.2", "psycopg"),
        ("python-calamine>=0.3", "python_calamine"),
        ("google-auth>=2.30", "google"),
        ("PyYAML>=6", "yaml"),
        ("Flask>=3.0", "flask"),
        ("typing_extensions", "typing_extensions"),
        ("typing-extensions ; python_version < '3.12'", "typing_extensions"),
    ],
)
def test_requirement_to_import_name(requirement: str, module: str) -> None:
    assert _import_name(requirement) == module


def test_the_checks_see_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from __future__ import annotations\nimport os.path\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from flask import Flask\n"
        "def f():\n    import requests\n    from . import sibling\n    from tests.gsheets import fake\n"
    )
    found = sorted(_imports(module))
    assert found == [(1, "__future__"), (2, "os"), (3, "typing"), (5, "flask"), (7, "requests"), (9, "tests")]
    assert [top for _, top in found if _third_party(top)] == ["flask", "requests", "tests"]
