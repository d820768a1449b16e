"""The API fuzzed from its own generated description: no request makes it answer 5xx, and every answer matches.

Generated requests (valid and boundary values for every path, query and body the OpenAPI document
describes) are sent to a service holding approved plans, allocations and actuals, once with a
finance token and once with a marketer's. Every answer must be below 500 and conform to the
response schema documented for its status.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sheets_standin import SheetsFake

from sheet_templates import build_schema, load_config
from sheet_templates.samples import sample_lines
from sync_service.access.auth import create_token
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.integrations.google.client import GoogleSettings
from sync_service.integrations.google.client import client as google_client
from sync_service.platform.context import STORE
from tests.databases import upgrade
from tests.sync_service.live_server import as_json

SCHEMA = build_schema(load_config())
TOKENS: dict[str, str] = {}
EXAMPLES = 12  # per operation and caller: enough to reach every bound, within a minute


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with contextlib.ExitStack() as stack:
        yield from _service(tmp_path_factory, stack)


def _service(tmp_path_factory: pytest.TempPathFactory, stack: contextlib.ExitStack) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade(url)
    fake = stack.enter_context(SheetsFake.serve())
    settings_ = GoogleSettings(credentials_info=fake.service_account_info(), api_base=fake.base_url, backoff=0.01)
    gc = google_client(settings_)
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SECRET_KEY": "fuzz",
            "GOOGLE_CREDENTIALS_JSON": json.dumps(fake.service_account_info()),
            "GOOGLE_API_BASE": fake.base_url,
            "GOOGLE_BACKOFF": 0.01,
            "GOOGLE_RETRIES": 1,
            "GOOGLE_MASTER_SPREADSHEET_ID": gc.create("Marketing master budget").id,
        }
    )
    with app.extensions[STORE].transaction() as session:
        sync_teams(session, SCHEMA)
        TOKENS["finance"] = create_token(session, "fiona", "finance")
        TOKENS["approver"] = create_token(session, "felix", "finance")
        TOKENS["marketer"] = create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"])
    client = app.test_client()
    for team, prefix in (("EMEA-ENTERPRISE", "EE"), ("NA-SMB", "NS")):
        lines = [as_json(x) for x in sample_lines(SCHEMA, team.split("-")[0], 6, seed=3, id_prefix=prefix)]
        sent = client.post(
            "/api/v1/submissions",
            headers={"Authorization": f"Bearer {TOKENS['finance']}"},
            json={"team": team, "lines": lines},
        )
        assert sent.status_code == 201, sent.get_json()
        approved = client.post(
            f"/api/v1/submissions/{sent.get_json()['id']}/approve",
            headers={"Authorization": f"Bearer {TOKENS['approver']}"},
            json={},
        )
        assert approved.status_code == 200, approved.get_json()
    yield app
    app.extensions[STORE].dispose()


def test_no_request_gets_a_server_error_and_every_answer_matches_its_schema(fuzzed_app: Any) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    document = fuzzed_app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {f"{m.upper()} {p}" for p, methods in document["paths"].items() for m in methods}
    assert {op.label for op in operations} == documented - {"GET /api/v1/openapi.json"}  # all but the document itself
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzzer(operation, mode, failures, statuses.setdefault(operation.label, set()))()
            except Exception:  # recorded in `failures`: go on with the next operation
                continue
    assert not failures, "\n\n".join(failures)
    # Not a run of refusals only: many operations were answered with success for a generated request (those with
    # an id or a team in their path rarely hit one that exists).
    succeeded = [label for label, seen in statuses.items() if any(200 <= code < 300 for code in seen)]
    assert len(succeeded) >= len(operations) // 3, sorted(set(statuses) - set(succeeded))


def _fuzzer(operation: Any, mode: GenerationMode, failures: list[str], statuses: set[int]) -> Any:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        for who in ("finance", "marketer"):
            response = case.call(headers={"Authorization": f"Bearer {TOKENS[who]}"})
            statuses.add(response.status_code)
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:  # every failed check of the answer, in one error
                failures.append(f"{operation.label} ({mode.value}) as {who}: {str(exc)[:800]}")
                raise

    return fuzz


def test_the_document_is_generated_from_the_request_models(fuzzed_app: Any) -> None:
    """The description says what the validation does: bounds in the schema are the ones enforced."""
    document = fuzzed_app.test_client().get("/api/v1/openapi.json").get_json()
    audit = next(p for p in document["paths"]["/api/v1/audit"]["get"]["parameters"] if p["name"] == "limit")
    assert audit["schema"]["maximum"] == 5000
    refused = fuzzed_app.test_client().get(
        "/api/v1/audit?limit=5001", headers={"Authorization": f"Bearer {TOKENS['finance']}"}
    )
    assert refused.status_code == 400 and "limit" in refused.get_json()["detail"]
    template = document["paths"]["/api/v1/templates/{team}.xlsx"]["get"]["responses"]["200"]["content"]
    assert list(template) == ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    submission = document["paths"]["/api/v1/submissions/{submission_id}"]["get"]["responses"]["200"]
    assert submission["content"]["application/json"]["schema"] != {}
