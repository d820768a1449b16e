"""The house in rooms: packages by domain, dependencies one way down, no cycles, no borrowed privates.

`make lint` runs import-linter with the contracts in pyproject.toml; these tests keep the rules it
cannot state (no cycle between modules at all, no private name imported across modules, each
route declared once) and prove the layers contract fails on an upward import.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("sync_service", "addin", "sheet_templates")


def _python_files() -> list[Path]:
    folders = [ROOT / name for name in (*FIRST_PARTY, "tests", "benchmarks", "devtools")]
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "node_modules" not in p.parts)


def test_no_import_cycle_between_modules_counting_imports_inside_functions() -> None:
    graph = grimp.build_graph("sync_service", cache_dir=None)  # every import, at any depth, TYPE_CHECKING too
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] not in (*FIRST_PARTY, "tests", "benchmarks"):
                    continue
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {private} from {node.module}")
    assert found == []


_DECLARATIONS = (  # the ways a route is declared: (regex, how its groups give method and rule)
    re.compile(r'@operation\(\s*bp,\s*"(?P<methods>[A-Z]+)",\s*"(?P<rule>[^"]+)"'),
    re.compile(r'@bp\.(?P<methods>get|post|put|patch|delete)\(\s*"(?P<rule>[^"]+)"'),
    re.compile(r'@bp\.route\(\s*"(?P<rule>[^"]+)",\s*methods=\[(?P<methods>[^\]]+)\]'),
)


def test_each_route_is_declared_once_with_its_method_and_path() -> None:
    from sync_service.app import create_app

    app = create_app({"DATABASE_URL": "sqlite://", "TESTING": True})
    declared: list[tuple[str, str]] = []
    for path in (ROOT / "sync_service").rglob("*.py"):
        if path.name == "sso.py":  # its blueprint is registered only when single sign-on is configured
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in _DECLARATIONS:
            for m in pattern.finditer(text):
                for method in re.findall(r"\w+", m.group("methods")):
                    declared.append((method.upper(), m.group("rule")))
    served = sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    )
    assert len(served) > 80
    assert sorted(declared) == served  # each served (method, path) declared exactly once, and nothing else


@pytest.mark.slow
def test_the_layers_contract_fails_on_an_upward_import(tmp_path: Path) -> None:
    """A deliberate import of the API from the platform layer breaks `lint-imports` (and so `make lint`)."""
    for name in FIRST_PARTY:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    kept = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    errors = tmp_path / "sync_service" / "platform" / "errors.py"
    errors.write_text(errors.read_text(encoding="utf-8") + "\nfrom sync_service.api import spend  # noqa\n")
    broken = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert broken.returncode != 0
    assert re.search(r"sync_service\.platform is not allowed to import sync_service\.api", broken.stdout)
    assert "sync_service.platform.errors -> sync_service.api.spend" in broken.stdout
