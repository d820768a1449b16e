"""Approval chains on the dashboard: each plan's place in its chain, each approver's queue, and stale forms.

With the organisation file of `tests/sync_service/test_approvals.py`: EMEA plans pass the region's
marketing lead, then finance; a plan changing the approved one by more than 50,000 also needs a controller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sheet_templates.config import default_config_path
from sync_service.access.auth import create_token
from sync_service.access.passwords import set_password
from sync_service.access.teams import sync_teams
from sync_service.app import create_app
from sync_service.platform.context import STORE
from sync_service.platform.migrate import upgrade
from tests.dashboard.web_helpers import PASSWORD, csrf, signed_in, text
from tests.sync_service.approval_chains import CHAINS, LARGE, SMALL
from tests.sync_service.service_helpers import line, submit

LEAD = [{"step": "region_lead", "region": "EMEA"}]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    org = tmp_path / "org.toml"
    org.write_text(default_config_path().read_text(encoding="utf-8") + CHAINS, encoding="utf-8")
    config = load_config(org)
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "ORG_CONFIG": str(org)})
    store = app.extensions[STORE]
    with store.transaction() as session:
        sync_teams(session, build_schema(config))
        tokens = {
            "maria": create_token(session, "maria", "marketer", ["EMEA-ENTERPRISE"]),
            "mia": create_token(session, "mia", "marketer", ["EMEA-ENTERPRISE"]),  # same team, no grant
            "lena": create_token(session, "lena", "marketer", ["EMEA-SMB"], approves=LEAD, config=config),
            "leo": create_token(session, "leo", "marketer", [], approves=LEAD, config=config),
            "sam": create_token(session, "sam", "marketer", ["NA-ENTERPRISE"]),
            "fiona": create_token(session, "fiona", "finance"),
            "frank": create_token(session, "frank", "finance"),
            "carla": create_token(
                session, "carla", "finance", approves=[{"step": "controller", "region": "*"}], config=config
            ),
        }
        for name in tokens:
            set_password(session, name, PASSWORD)
    yield app, tokens
    store.dispose()


def submitted(app: Any, token: str, lines: list[dict[str, Any]], team: str = "EMEA-ENTERPRISE") -> int:
    answer = submit(app.test_client(), token, lines, team)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["id"]


def table(page: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}"[^>]*>.*?</table>', page, re.S)
    return text(found.group(0)) if found else ""


def row(page: str, table_id: str, sid: int) -> str:
    """The words of submission `sid`'s row in the table `table_id`; empty when it is not there."""
    found = re.search(rf'<table id="{table_id}"[^>]*>.*?</table>', page, re.S)
    if not found:
        return ""
    cells = re.search(rf'<tr data-submission="{sid}">.*?</tr>', found.group(0), re.S)
    return text(cells.group(0)) if cells else ""


def team_state(client: Any, team: str) -> str:
    """The words of the team's row on the plan status page."""
    cells = re.search(rf'<tr data-team="{team}">.*?</tr>', client.get("/").get_data(as_text=True), re.S)
    return text(cells.group(0))


def step_row(page: str, step: str) -> str:
    cells = re.search(rf'<tr class="[^"]*" data-step="{step}">.*?</tr>', page, re.S)
    return text(cells.group(0)) if cells else ""


def decide(client: Any, sid: int, page: str, action: str = "approve", comment: str = "ok") -> str:
    """Post the page's decision form as it was shown (its step and token), and read the page it returns to."""
    step = re.search(r'name="step" value="([^"]+)"', page).group(1)
    answer = client.post(
        f"/submissions/{sid}/decide",
        data={"action": action, "comment": comment, "step": step, "csrf_token": csrf(page)},
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/submissions/{sid}")
    return client.get(f"/submissions/{sid}").get_data(as_text=True)


def test_a_region_lead_approves_their_step_then_finance_sees_the_plan_waiting_for_them(dashboard) -> None:
    app, tokens = dashboard
    sid = submitted(app, tokens["maria"], SMALL)
    assert team_state(signed_in(app, "maria"), "EMEA-ENTERPRISE").startswith(
        "EMEA Enterprise Submitted waiting for Region marketing lead"
    )

    lena = signed_in(app, "lena")  # a marketer of another team, holding the EMEA lead's step
    assert ">Approvals</a>" in lena.get("/").get_data(as_text=True)
    queue = lena.get("/approvals").get_data(as_text=True)
    waiting = row(queue, "waiting-for-you", sid)
    for shown in (f"#{sid}", "EMEA-ENTERPRISE", "maria", "Region marketing lead", "step 1 of 2", "3,000.00"):
        assert shown in waiting, waiting
    assert "step 1 of 2 Region marketing lead" in row(queue, "in-review", sid)
    fiona = signed_in(app, "fiona")
    assert row(fiona.get("/approvals").get_data(as_text=True), "waiting-for-you", sid) == ""  # not finance's turn

    page = lena.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Waits for Region marketing lead (step 1 of 2)" in text(page)
    assert "Approve as Region marketing lead" in page and 'name="step" value="region_lead"' in page
    assert "Approve as Finance" not in page
    after = decide(lena, sid, page, comment="fits the EMEA plan")
    assert f"Submission {sid} approved at your step; it now waits for Finance." in text(after)
    assert 'value="approve"' not in after  # the finance step is not hers
    queue = lena.get("/approvals").get_data(as_text=True)
    assert row(queue, "waiting-for-you", sid) == "" and "step 2 of 2 Finance" in row(queue, "in-review", sid)

    page = fiona.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Waits for Finance (step 2 of 2)" in text(page)
    lead = step_row(page, "region_lead")
    assert lead.startswith("1 of 2 Region marketing lead Approved lena") and lead.endswith("fits the EMEA plan")
    assert step_row(page, "finance") == "2 of 2 Finance Waiting"
    assert "Approve as Finance" in page
    assert "step 2 of 2" in row(fiona.get("/approvals").get_data(as_text=True), "waiting-for-you", sid)
    done = decide(fiona, sid, page, comment="within budget")
    assert f"Submission {sid} approved." in text(done) and "Every step is approved." in text(done)
    assert step_row(done, "finance").startswith("2 of 2 Finance Approved fiona")
    assert team_state(signed_in(app, "maria"), "EMEA-ENTERPRISE").startswith(f"EMEA Enterprise Approved #{sid}")


def test_only_who_may_take_the_waiting_step_sees_the_form_and_others_are_refused(dashboard) -> None:
    app, tokens = dashboard
    sid = submitted(app, tokens["maria"], SMALL)
    mia = signed_in(app, "mia")  # reads her team's plan but holds no step of its chain
    page = mia.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Waits for Region marketing lead" in text(page) and 'value="approve"' not in page
    assert table(mia.get("/approvals").get_data(as_text=True), "waiting-for-you") == ""
    refused = mia.post(
        f"/submissions/{sid}/decide", data={"action": "approve", "step": "region_lead", "csrf_token": csrf(page)}
    )
    assert refused.status_code == 302
    after = text(mia.get(f"/submissions/{sid}").get_data(as_text=True))
    assert "only finance and the approvers an approval chain names approve or reject plans" in after
    assert step_row(mia.get(f"/submissions/{sid}").get_data(as_text=True), "region_lead").endswith("Waiting")

    sam = signed_in(app, "sam")  # another region's marketer: not his plan, not his chain
    assert sam.get(f"/submissions/{sid}").status_code == 404
    assert row(sam.get("/approvals").get_data(as_text=True), "in-review", sid) == ""
    assert 'value="approve"' not in signed_in(app, "maria").get(f"/submissions/{sid}").get_data(as_text=True)

    # Finance sees the plan and the chain, but the region lead's step is not theirs to take.
    fiona = signed_in(app, "fiona")
    page = fiona.get(f"/submissions/{sid}").get_data(as_text=True)
    assert 'value="approve"' not in page
    fiona.post(f"/submissions/{sid}/decide", data={"action": "approve", "csrf_token": csrf(page)})
    assert "waits for Region marketing lead (step 1); you do not hold it" in text(
        fiona.get(f"/submissions/{sid}").get_data(as_text=True)
    )

    # The lead's own plan: she holds the step but never sees a form for her own submission; the other lead does.
    own = submitted(app, tokens["lena"], [line("EMEA-0101", team="EMEA-SMB", m01="500")], team="EMEA-SMB")
    lena = signed_in(app, "lena")
    assert 'value="approve"' not in lena.get(f"/submissions/{own}").get_data(as_text=True)
    assert row(lena.get("/approvals").get_data(as_text=True), "waiting-for-you", own) == ""
    leo = signed_in(app, "leo")  # no team at all: he reads the plan because he approves it
    assert "Approve as Region marketing lead" in leo.get(f"/submissions/{own}").get_data(as_text=True)
    assert "step 1 of 2" in row(leo.get("/approvals").get_data(as_text=True), "waiting-for-you", own)


def test_a_stale_form_says_who_took_the_step_and_takes_nothing(dashboard) -> None:
    app, tokens = dashboard
    sid = submitted(app, tokens["maria"], SMALL)
    lena, leo = signed_in(app, "lena"), signed_in(app, "leo")
    lenas_page = lena.get(f"/submissions/{sid}").get_data(as_text=True)
    leos_page = leo.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Approve as Region marketing lead" in lenas_page and "Approve as Region marketing lead" in leos_page
    decide(leo, sid, leos_page, comment="leo was first")
    late = text(decide(lena, sid, lenas_page, comment="lena was second"))
    assert re.search(
        rf"the region_lead step of submission {sid} was taken by leo at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d; "
        r"it now waits for Finance",
        late,
    ), late
    assert "lena was second" not in late and "leo was first" in late

    # A finance user's form for the finance step, posted after another finance user took it, does not
    # take the controller step it now waits for, though she holds that one too.
    big = submitted(app, tokens["maria"], LARGE)
    assert "step 1 of 3" in row(leo.get("/approvals").get_data(as_text=True), "waiting-for-you", big)
    decide(leo, big, leo.get(f"/submissions/{big}").get_data(as_text=True))
    carla, frank = signed_in(app, "carla"), signed_in(app, "frank")
    carlas_page = carla.get(f"/submissions/{big}").get_data(as_text=True)
    assert "Approve as Finance" in carlas_page
    decide(frank, big, frank.get(f"/submissions/{big}").get_data(as_text=True))
    late = decide(carla, big, carlas_page, comment="carla meant finance")
    assert f"the finance step of submission {big} was taken by frank at" in text(late)
    assert step_row(late, "controller") == "3 of 3 Controller Waiting"
    assert "Approve as Controller" in carla.get(f"/submissions/{big}").get_data(as_text=True)
    assert "step 3 of 3" in row(carla.get("/approvals").get_data(as_text=True), "waiting-for-you", big)
