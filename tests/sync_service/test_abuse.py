"""A careless client and an attacker against a real service process: bounded work, clear refusals, never a 500.

Each case is one of the findings a trial of the service produced; the server is a real
`plansheet serve` on 127.0.0.1, and its memory is read from /proc while the oversized bodies
arrive.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from tests.sync_service.live_server import as_json, call, init, service_env, start, stop, token

SCHEMA = build_schema(load_config())
INT64 = 2**63 - 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("abuse")
    env = service_env(f"sqlite:///{folder / 'abuse.db'}")
    init(env)
    tokens = {
        "finance": token(env, "fiona", "finance"),
        "approver": token(env, "felix", "finance"),
        "emea": token(env, "maria", "marketer", "EMEA-ENTERPRISE"),
    }
    process, base = start(env)
    try:
        lines = [as_json(x) for x in sample_lines(SCHEMA, "NA", 5, seed=2, id_prefix="NAX")]
        status, body = call(base, tokens["finance"], "POST", "/api/v1/submissions", {"team": "NA-SMB", "lines": lines})
        assert status == 201, body
        status, body = call(base, tokens["approver"], "POST", f"/api/v1/submissions/{body['id']}/approve", {})
        assert status == 200, body
        yield {"base": base, "pid": process.pid, **tokens}
    finally:
        stop(process)


def raw(
    base: str, who: str, method: str, path: str, data: bytes, content_type: str = "application/json"
) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Authorization": f"Bearer {who}", "Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


def peak_memory(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (VmHWM)."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.parametrize(
    "name, body",
    [
        (
            "a million one-field lines",
            b'{"team": "EMEA-ENTERPRISE", "lines": [' + b",".join([b'{"a":1}'] * 1_000_000) + b"]}",
        ),
        (
            "five million empty lines",
            b'{"team": "EMEA-ENTERPRISE", "lines": [' + b",".join([b"{}"] * 5_000_000) + b"]}",
        ),
        (
            "four and a half million numbers",
            b'{"team": "EMEA-ENTERPRISE", "rows": [[' + b",".join([b"0.5"] * 4_500_000) + b"]]}",
        ),
    ],
)
def test_an_oversized_json_plan_is_refused_in_bounded_time_and_memory(
    server: dict[str, Any], name: str, body: bytes
) -> None:
    assert len(body) < 20 * 2**20  # under the upload limit: the body alone is not refused
    before = peak_memory(server["pid"])
    started = time.perf_counter()
    status, answer = raw(server["base"], server["emea"], "POST", "/api/v1/submissions", body)
    took = time.perf_counter() - started
    grown = peak_memory(server["pid"]) - before
    assert status in (400, 413), answer
    assert took < 2.0, f"{name}: answered in {took:.2f} s"
    assert grown < 300 * 2**20, f"{name}: the server grew by {grown / 2**20:.0f} MB"
    status, listed = call(server["base"], server["finance"], "GET", "/api/v1/submissions?team=EMEA-ENTERPRISE")
    assert listed["submissions"] == []  # nothing stored for a refused request


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("GET", f"/api/v1/submissions/{INT64 + 1}", None, 404),
        ("GET", f"/api/v1/submissions/{2**70}", None, 404),
        ("GET", f"/api/v1/master/versions/0/diff/{2**64}", None, 404),
        (
            "POST",
            "/api/v1/submissions",
            {"team": "EMEA-ENTERPRISE", "lines": [], "based_on": {"submission": 2**63}},
            400,
        ),
        ("POST", "/api/v1/submissions", {"team": "EMEA-ENTERPRISE", "lines": [{"m01": 10**400}]}, 400),
        ("POST", "/api/v1/submissions", {"team": "EMEA-ENTERPRISE", "rows": [["x"] * 16_385]}, 400),
        ("POST", "/api/v1/submissions", {"team": ["EMEA-ENTERPRISE"], "lines": []}, 400),
        ("PUT", "/api/v1/allocations", {"allocations": [{"region": ["EMEA"], "quarter": "Q1", "amount": 1}]}, 400),
        ("GET", "/api/v1/audit?limit=%C2%B2", None, 400),
        ("POST", "/api/v1/submissions/1/reject", {"comment": "no\x00pe"}, 400),
        ("POST", "/api/v1/functions:batch", {"calls": [{"name": "PS_PLANNED", "args": [[[[["deep"]]]]]}]}, 400),
    ],
)
def test_what_used_to_answer_500_is_refused_clearly(
    server: dict[str, Any], method: str, path: str, body: Any, status: int
) -> None:
    got, answer = call(server["base"], server["finance"], method, path, body)
    assert got == status, answer
    assert answer["detail"] and answer["status"] == status


def test_json_nested_a_hundred_thousand_deep_is_refused(server: dict[str, Any]) -> None:
    body = b'{"team": "EMEA-ENTERPRISE", "lines": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = raw(server["base"], server["emea"], "POST", "/api/v1/submissions", body)
    assert status == 400 and "nested" in answer["detail"], answer


def test_add_in_file_names_are_normalised_before_the_allow_list(server: dict[str, Any]) -> None:
    for name in (
        "./package.json",
        "test/functions.test.mjs",
        "./test/host_stubs.mjs",
        "../officejs/manifest.xml",
        "package-lock.json",
        "functions.js/",
        "%2e%2e/apps_script/Code.gs",
    ):
        request = urllib.request.Request(f"{server['base']}/addin/officejs/{name}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        refused.value.close()
        assert refused.value.code == 404, name
    with urllib.request.urlopen(f"{server['base']}/addin/officejs/functions.js", timeout=10) as served:
        assert served.status == 200


def test_a_marketer_reads_no_other_regions_figures_through_the_live_functions(server: dict[str, Any]) -> None:
    calls = [
        {"name": "PS_BUDGET", "args": [[["NA"]], [["Q1"]]]},
        {"name": "PS_REMAINING_LIVE", "args": [[["NA"]]]},
        {"name": "PS_PLANNED", "args": [[["NA"]]]},
        {"name": "PS_PLANNED", "args": [[["NA-SMB"]]]},
        {"name": "PS_BUDGET", "args": [[["EMEA"]], [["Q1"]]]},
    ]
    status, answer = call(server["base"], server["emea"], "POST", "/api/v1/functions:batch", {"calls": calls})
    assert status == 200
    *others, own = answer["results"]
    assert all(r["error"]["code"] == "#N/A" for r in others), others
    assert own["result"][0][0] > 0  # EMEA's own allocation
    status, finance = call(server["base"], server["finance"], "POST", "/api/v1/functions:batch", {"calls": calls})
    assert all("result" in r for r in finance["results"][:3])  # finance reads them all


def test_refused_requests_leave_the_service_answering(server: dict[str, Any]) -> None:
    """After every abuse above, the service still answers a normal request at once."""
    results: list[int] = []

    def ask() -> None:
        results.append(call(server["base"], server["finance"], "GET", "/api/v1/rollup?by=region")[0])

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 4
