"""The add-ins checked by the hosts' own tooling (addin/tooling, pinned by its package-lock.json).

- The TypeScript compiler checks functions.js and taskpane.js against Office's type definitions
  (`@types/office-js`, `@types/office-runtime`, `@types/custom-functions-runtime`) and Code.gs
  against `@types/google-apps-script`; a copy with one API name misspelt must fail, so the check
  is known to see the calls.
- Microsoft's `custom-functions-metadata` generator, run over JSDoc stubs written from the
  catalogue, gives the functions.json the service serves, once Microsoft's defaults are filled in.

The packages are installed with `npm ci` into addin/tooling when node_modules is missing or older
than the lock file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from addin.live import catalog
from addin.registry import ArgType, Shape, SheetFunction
from sync_service.app import create_app
from tests.system_deps import SETUP_HINT, npm_ci, require_binary

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / "addin" / "tooling"
OFFICEJS = ROOT / "addin" / "officejs"
CODE_GS = ROOT / "addin" / "apps_script" / "Code.gs"
NPM_HINT = f"sudo apt-get install --no-install-recommends nodejs npm ({SETUP_HINT})"


@pytest.fixture(scope="session")
def tooling() -> Iterator[Path]:
    """addin/tooling with its pinned packages installed (`npm ci` when needed); yields its bin folder."""
    require_binary("node", NPM_HINT)
    npm = require_binary("npm", NPM_HINT)
    npm_ci(npm, TOOLING)
    modules = TOOLING / "node_modules"
    yield modules / ".bin"


def tsc(bin_dir: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "tsc"), "-p", str(config)], cwd=config.parent, capture_output=True, text=True, timeout=300
    )


def checked_copy(folder: Path, base: str, files: dict[str, str]) -> Path:
    """Write `files` (name -> text) to `folder` and a tsconfig checking them with addin/tooling/`base`'s settings."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    config = folder / "tsconfig.json"
    config.write_text(json.dumps({"extends": str(TOOLING / base), "files": sorted(files)}), encoding="utf-8")
    return config


def officejs_sources() -> dict[str, str]:
    return {
        "plansheet-globals.d.ts": (TOOLING / "plansheet-globals.d.ts").read_text(encoding="utf-8"),
        "functions.js": (OFFICEJS / "functions.js").read_text(encoding="utf-8"),
        "taskpane.js": (OFFICEJS / "taskpane.js").read_text(encoding="utf-8"),
    }


# --- type checks ---------------------------------------------------------------------------------------


def test_the_officejs_sources_type_check_against_offices_definitions(tooling: Path) -> None:
    for name in ("functions.js", "taskpane.js"):
        assert (OFFICEJS / name).read_text(encoding="utf-8").startswith("// @ts-check"), name
    done = tsc(tooling, TOOLING / "tsconfig.officejs.json")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("file", "right", "wrong"),
    [
        ("taskpane.js", "Excel.run(", "Excel.runn("),
        ("taskpane.js", "Excel.CalculationType.full", "Excel.CalculationType.fulll"),
        ("functions.js", "CustomFunctions.associate(", "CustomFunctions.asociate("),
        ("functions.js", "invocation.setResult(", "invocation.setResultt("),
        ("functions.js", "storage.getItem(", "storage.getItme("),
    ],
)
def test_a_misspelt_office_api_call_fails_the_check(
    tooling: Path, tmp_path: Path, file: str, right: str, wrong: str
) -> None:
    files = officejs_sources()
    assert right in files[file], f"{file} no longer calls {right}: pick another call for this test"
    files[file] = files[file].replace(right, wrong, 1)
    done = tsc(tooling, checked_copy(tmp_path, "tsconfig.officejs.json", files))
    assert done.returncode != 0, f"{wrong} in {file} passed the type check"
    assert wrong.split(".")[-1].rstrip("(") in done.stdout, done.stdout


def test_code_gs_type_checks_against_googles_definitions(tooling: Path, tmp_path: Path) -> None:
    text = CODE_GS.read_text(encoding="utf-8")
    assert text.startswith("// @ts-check")
    done = tsc(tooling, checked_copy(tmp_path, "tsconfig.apps_script.json", {"Code.js": text}))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        ("SpreadsheetApp.getActiveSpreadsheet()", "SpreadsheetApp.getActiveSpreadshet()"),
        (".timeBased().everyMinutes(", ".timeBased().everyMinute("),
        ("PropertiesService.getDocumentProperties()", "PropertiesService.getDocumentProperty()"),
        ("UrlFetchApp.fetch(", "UrlFetchApp.fetsh("),
    ],
)
def test_a_misspelt_apps_script_call_fails_the_check(tooling: Path, tmp_path: Path, right: str, wrong: str) -> None:
    text = CODE_GS.read_text(encoding="utf-8")
    assert right in text, f"Code.gs no longer calls {right}: pick another call for this test"
    config = checked_copy(tmp_path, "tsconfig.apps_script.json", {"Code.js": text.replace(right, wrong, 1)})
    done = tsc(tooling, config)
    assert done.returncode != 0, f"{wrong} passed the type check"
    assert wrong.split(".")[-1].split("(")[0] in done.stdout, done.stdout


# --- Microsoft's metadata generator --------------------------------------------------------------------

_JSDOC_TYPES = {ArgType.NUMBER: "number", ArgType.TEXT: "string", ArgType.BOOLEAN: "boolean", ArgType.ANY: "any"}


def jsdoc_stub(function: SheetFunction) -> str:
    """A `@customfunction` stub declaring `function` as the generator reads one: JSDoc and a signature."""
    lines = ["/**", f" * {function.help}", f" * @customfunction {function.name} {function.name}"]
    for arg in function.args:
        kind = _JSDOC_TYPES[arg.type] + ("[][]" if arg.shape is Shape.MATRIX else "")
        name = f"[{arg.name}]" if arg.optional else arg.name
        lines.append(f" * @param {{{kind}}} {name} {arg.help}")
    params = [a.name for a in function.args]
    if function.stream:
        lines.append(" * @param {CustomFunctions.StreamingInvocation<any>} invocation the cell's invocation")
        params.append("invocation")
    else:
        if function.volatile:
            lines.append(" * @volatile")
        lines.append(f" * @returns {{{'any[][]' if function.result is Shape.MATRIX else 'any'}}} the result")
    lines.append(" */")
    lines.append(f"function {function.name}({', '.join(params)}) {{}}")
    return "\n".join(lines) + "\n"


def with_defaults(entry: dict[str, Any]) -> dict[str, Any]:
    """A functions.json entry with Microsoft's defaults written out (type any, scalar, not optional, no options)."""
    options = {"volatile": False, "stream": False, **entry.get("options", {})}
    return {
        "id": entry["id"],
        "name": entry["name"],
        "description": entry.get("description", ""),
        "parameters": [
            {
                "name": p["name"],
                "description": p.get("description", ""),
                "type": p.get("type", "any"),
                "dimensionality": p.get("dimensionality", "scalar"),
                "optional": p.get("optional", False),
            }
            for p in entry.get("parameters", [])
        ],
        "result": {
            "type": entry.get("result", {}).get("type", "any"),
            "dimensionality": entry.get("result", {}).get("dimensionality", "scalar"),
        },
        "options": options,
    }


def test_the_served_functions_json_is_what_microsofts_generator_makes(tooling: Path, tmp_path: Path) -> None:
    source = tmp_path / "functions.js"
    source.write_text("".join(jsdoc_stub(f) for f in catalog()), encoding="utf-8")
    out = tmp_path / "functions.json"
    done = subprocess.run(
        [str(tooling / "custom-functions-metadata"), "generate", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(Path(shutil.which("node") or "node").parent), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    generated = json.loads(out.read_text(encoding="utf-8"))

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"})
    served = app.test_client().get("/addin/functions.json").get_json()
    assert [f["id"] for f in generated["functions"]] == [f["id"] for f in served["functions"]]
    for mine, microsofts in zip(served["functions"], generated["functions"], strict=True):
        assert with_defaults(mine) == with_defaults(microsofts), mine["id"]
    live = [f for f in served["functions"] if f["options"].get("stream")]
    assert {f["id"] for f in live} == {
        "PS_PLANNED",
        "PS_ESTIMATE",
        "PS_BASELINE",
        "PS_ACTUAL",
        "PS_COMMITTED",
        "PS_INVOICED",
        "PS_ACCRUED",
        "PS_LIVE_VARIANCE",
        "PS_BUDGET",
        "PS_REMAINING_LIVE",
        "PS_RESULT",
        "PS_EXPECTED",
        "PS_TARGET",
    }
    assert all("volatile" not in f["options"] for f in live), "Excel ignores volatile on a streaming function"
