"""What-if scenarios in the browser: made, refused at the field, fixed, changed, compared, promoted, discarded.

The expected amounts are worked out here from the lines the test sent (all in the reporting
currency, so no rate applies) and the factors it asked for, rounded half away from zero per line
and month as finance rounds cents; never read back from the service.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from sheet_templates import build_schema, load_config
from sync_service.access.passwords import set_password
from tests.dashboard.conftest import LAPTOP, PHONE, log_in
from tests.dashboard.web_helpers import PASSWORD, csrf, signed_in, text
from tests.sync_service.http_helpers import auth
from tests.sync_service.live_server import as_json, call
from tests.sync_service.service_helpers import Service, approved_plan, line, make_service

SCHEMA = build_schema(load_config())
MONTHS = [c.name for c in SCHEMA.month_columns]
Q = {f"Q{k + 1}": MONTHS[3 * k : 3 * k + 3] for k in range(4)}
LABEL = {c.name: c.label for c in SCHEMA.month_columns}

# EMEA Enterprise's approved plan: Events and Webinars through the year (USD, the reporting currency).
PLAN = [
    line("EMEA-0001", m01="1000", m04="2000", m07="1500.25", m08="999.99", m10="400"),
    line("EMEA-0002", channel="Webinars", m02="800", m05="1200", m08="333.33", m11="100"),
    line("EMEA-0003", m07="10000", m09="2500.50", m12="75"),
]


def cents(amount: Any) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def planned(changes: list[tuple[str, str, str]]) -> dict[str, int]:
    """The plan's cents by quarter after scaling (channel, quarter, factor), each line's month rounded on its own."""
    out = dict.fromkeys(Q, 0)
    for x in PLAN:
        for quarter, months in Q.items():
            for m in months:
                amount = cents(x.get(m, "0"))
                for channel, where, factor in changes:
                    if x["channel"] == channel and where == quarter:
                        amount = int((Decimal(amount) * Decimal(factor)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                out[quarter] += amount
    return out


def usd(cents_: int) -> str:
    """Cents as finance writes dollars: "$1,234.50", negatives in parentheses."""
    text = f"${abs(cents_) // 100:,}.{abs(cents_) % 100:02d}"
    return f"({text})" if cents_ < 0 else text


def words(text: str) -> str:
    return " ".join(text.split())


def no_codes(text: str) -> None:
    """What a person reads names months and amounts as people write them: no month keys, no raw cents."""
    assert not re.search(r"\bm(0[1-9]|1[0-2])\b", text), re.search(r".{40}\bm\d\d\b.{40}", text)
    assert not re.search(r"\d{5,}(?![\d,.])", text.replace("FY2027", "")), text


# --- in Chromium ------------------------------------------------------------------------------------------------


@pytest.mark.chromium
def test_finance_makes_fixes_compares_promotes_and_discards_scenarios(site, browser, tmp_path: Path) -> None:
    base, tokens = site
    plan = {"team": "EMEA-ENTERPRISE", "lines": [as_json(x) for x in PLAN]}
    status, sent = call(base, tokens["maria"], "POST", "/api/v1/submissions", plan)
    assert status == 201, sent
    status, body = call(base, tokens["fiona"], "POST", f"/api/v1/submissions/{sent['id']}/approve", {"comment": "ok"})
    assert status == 200, body
    status, body = call(base, tokens["fiona"], "POST", "/api/v1/periods/lock", {"months": ["m01"]})
    assert status == 200, body
    origin = planned([])

    page = log_in(browser, base, "fiona", LAPTOP)
    page.goto(f"{base}/scenarios")
    assert "No scenario yet" in page.inner_text("main")
    page.screenshot(path=tmp_path / "scenarios-empty-1440.png", full_page=True)

    # A mistyped factor over a quarter holding a closed month: both refused at their fields, nothing made.
    page.fill("#field-name", "Events down a fifth in Q3")
    page.select_option("#field-scale-channel", "Events")
    page.select_option("#field-scale-period", "Q1")
    page.fill("#field-scale-factor", "0.8x")
    page.click("#make-scenario button[type=submit]")
    summary = page.inner_text("#error-summary")
    assert "Factor must be a number from 0 to 100" in summary
    assert f"{LABEL['m01']} is closed; a scenario changes open months only" in summary
    assert "Factor must be a number from 0 to 100" in page.inner_text("#error-scale-factor")
    assert page.get_attribute("#field-scale-factor", "aria-invalid") == "true"
    assert f"{LABEL['m01']} is closed" in page.inner_text("#error-scale-period")
    assert page.input_value("#field-name") == "Events down a fifth in Q3"  # what was typed is kept
    assert page.input_value("#field-scale-factor") == "0.8x"
    page.screenshot(path=tmp_path / "scenarios-refused-1440.png", full_page=True)
    _, listed = call(base, tokens["fiona"], "GET", "/api/v1/scenarios")
    assert listed["scenarios"] == []

    page.fill("#field-scale-factor", "0.8")
    page.select_option("#field-scale-period", "Q3")
    page.click("#make-scenario button[type=submit]")
    page.wait_for_url(re.compile(r".*/scenarios/\d+$"))
    first = int(page.url.rsplit("/", 1)[1])
    cut = planned([("Events", "Q3", "0.8")])
    assert words(page.inner_text("#scenario-total")) == (
        f"Planned spend {usd(sum(cut.values()))} against {usd(sum(origin.values()))} in its origin: "
        f"a change of {usd(sum(cut.values()) - sum(origin.values()))}."
    )
    q3 = page.locator("#against-origin tr[data-key=EMEA][data-period=Q3] td")
    assert q3.all_inner_texts() == [
        "EMEA",
        "Q3 FY2027",
        usd(origin["Q3"]),
        usd(cut["Q3"]),
        usd(cut["Q3"] - origin["Q3"]),
    ]
    assert page.locator("#against-origin tfoot td").all_inner_texts() == [
        usd(sum(origin.values())), usd(sum(cut.values())), usd(sum(cut.values()) - sum(origin.values()))
    ]  # fmt: skip
    assert "Scaled channel Events by 0.8 in Q3 FY2027" in page.inner_text("#revisions")
    changed = page.inner_text("#lines-changed")
    assert f"{LABEL['m07']}: $1,500.25 → $1,200.20" in changed and "EMEA-0002" not in changed
    no_codes(page.inner_text("main"))
    page.screenshot(path=tmp_path / "scenario-1440.png", full_page=True)

    # A second: an unchanged copy, then changed on its page (Webinars up a half in Q2).
    page.goto(f"{base}/scenarios")
    page.fill("#field-name", "Webinars up in Q2")
    page.click("#make-scenario button[type=submit]")
    page.wait_for_url(re.compile(r".*/scenarios/\d+$"))
    second = int(page.url.rsplit("/", 1)[1])
    assert "a change of $0.00" in words(page.inner_text("#scenario-total"))
    page.select_option("#field-scale-channel", "Webinars")
    page.select_option("#field-scale-period", "Q2")
    page.fill("#field-scale-factor", "1.5")
    page.click("#scale-form button[type=submit]")
    assert "is changed (revision 2)" in page.inner_text(".flash.ok")
    webinars = planned([("Webinars", "Q2", "1.5")])
    assert page.locator("#against-origin tfoot td").nth(1).inner_text() == usd(sum(webinars.values()))

    # Side by side: one column each, the second less the first, a totals row.
    page.goto(f"{base}/scenarios")
    page.check(f"#compare-{first}")
    page.check(f"#compare-{second}")
    page.click("#compare-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/scenarios/compare\?.*"))
    heads = page.locator("#side-by-side thead th").all_inner_texts()
    assert heads == [
        "Region", "Period", "Origin", "Events down a fifth in Q3", "Webinars up in Q2",
        "Webinars up in Q2 − Events down a fifth in Q3",
    ]  # fmt: skip
    for quarter in Q:
        row = page.locator(f"#side-by-side tr[data-key=EMEA][data-period={quarter}] td").all_inner_texts()
        assert row[2:] == [usd(origin[quarter]), usd(cut[quarter]), usd(webinars[quarter]),
                           usd(webinars[quarter] - cut[quarter])]  # fmt: skip
    a, b = sum(cut.values()), sum(webinars.values())
    assert page.locator("#side-by-side tfoot td").all_inner_texts() == [usd(sum(origin.values())), usd(a), usd(b),
                                                                        usd(b - a)]  # fmt: skip
    no_codes(page.inner_text("main"))
    page.screenshot(path=tmp_path / "scenarios-compare-1440.png", full_page=True)

    # Promote the first into the approval chain: submitted, waiting for finance; the master unchanged.
    page.goto(f"{base}/scenarios/{first}")
    page.check("#promote-form input[value=master]")
    page.click("#promote-form button[type=submit]")
    assert "the plans of EMEA-ENTERPRISE wait in their approval chains" in page.inner_text(".flash.ok")
    assert page.inner_text("#scenario-status") == "promoted"
    waiting = page.locator("#promoted-plans tr[data-team=EMEA-ENTERPRISE] td").all_inner_texts()
    sid = int(waiting[1].lstrip("#"))
    assert waiting[2:] == ["submitted", "Finance (step 1 of 1)"]
    assert page.locator("#scale-form").count() == 0  # a promoted scenario changes no more
    _, submission = call(base, tokens["fiona"], "GET", f"/api/v1/submissions/{sid}")
    assert submission["status"] == "submitted" and submission["source"] == "scenario"
    _, rollup = call(base, tokens["fiona"], "GET", "/api/v1/rollup?by=region&period=year")
    assert sum(cents(r["amount"]) for r in rollup["rows"]) == sum(origin.values())
    page.screenshot(path=tmp_path / "scenario-promoted-1440.png", full_page=True)

    # Discard the second: the list says so, and the API refuses any later change.
    page.goto(f"{base}/scenarios/{second}")
    page.fill("#field-discard-comment", "not this year")
    page.click("#discard-form button[type=submit]")
    page.wait_for_url(f"{base}/scenarios")
    assert "Scenario Webinars up in Q2 is discarded." in page.inner_text(".flash.ok")
    assert page.get_attribute(f"tr[data-scenario='{second}']", "data-status") == "discarded"
    assert page.get_attribute(f"tr[data-scenario='{first}']", "data-status") == "promoted"
    status, _ = call(base, tokens["fiona"], "POST", f"/api/v1/scenarios/{second}/changes",
                     {"changes": [{"op": "scale", "factor": "2", "period": "Q4"}]})  # fmt: skip
    assert status == 409
    page.screenshot(path=tmp_path / "scenarios-1440.png", full_page=True)

    # On a phone every page holds at 390 px: wide tables scroll inside themselves.
    phone = log_in(browser, base, "fiona", PHONE)
    for name, path in (
        ("scenarios", "/scenarios"),
        ("scenario", f"/scenarios/{first}"),
        ("scenario-open", f"/scenarios/{second}"),
        ("scenarios-compare", f"/scenarios/compare?ids={first}&ids={second}&by=channel&period=month"),
    ):
        phone.goto(f"{base}{path}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, name
        no_codes(phone.inner_text("main"))
        phone.screenshot(path=tmp_path / f"{name}-390.png", full_page=True)
    phone.goto(f"{base}/scenarios")
    phone.fill("#field-name", "x" * 3)
    phone.fill("#field-scale-factor", "-1")
    phone.click("#make-scenario button[type=submit]")
    assert "Factor must be a number from 0 to 100" in phone.inner_text("#error-scale-factor")
    phone.wait_for_load_state("load")  # measured once the stylesheet applies
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=tmp_path / "scenarios-refused-390.png", full_page=True)


# --- through the test client ---------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = make_service(f"sqlite:///{tmp_path / 'web.db'}")
    with s.store.transaction() as session:
        for name in ("maria", "fiona", "frank"):
            set_password(session, name, PASSWORD)
    approved_plan(s, PLAN)
    yield s
    s.store.dispose()


def summary(page: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    return text(found.group(0)) if found else ""


def made(client: Any, name: str, **fields: str) -> int:
    page = client.get("/scenarios").get_data(as_text=True)
    answer = client.post("/scenarios", data={"csrf_token": csrf(page), "name": name, **fields})
    assert answer.status_code == 302, summary(answer.get_data(as_text=True))
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def revision(s: Service, scenario: int) -> int:
    return s.client.get(f"/api/v1/scenarios/{scenario}", headers=auth(s.tokens["finance"])).get_json()["revision"]


def test_a_change_touching_a_closed_month_is_refused_naming_it_and_changes_nothing(service: Service) -> None:
    locked = service.client.post(
        "/api/v1/periods/lock", headers=auth(service.tokens["finance"]), json={"months": ["m04", "m05"]}
    )
    assert locked.status_code == 200
    fiona = signed_in(service, "fiona")
    sid = made(fiona, "Closed months")
    page = fiona.get(f"/scenarios/{sid}").get_data(as_text=True)
    assert f"{LABEL['m04']} (closed)" in page  # the forms say which months are closed
    token = csrf(page)
    tries = {
        "move": ({"move.line_id": "EMEA-0001", "move.from": "m04", "move.to": "m06", "move.amount": "100"},
                 "move-from", f"{LABEL['m04']} is closed"),
        "scale": ({"scale.factor": "0.5", "scale.period": "Q2"}, "scale-period",
                  f"{LABEL['m04']} and {LABEL['m05']} are closed"),
        "drop": ({"drop.line_ids": "EMEA-0002"}, "drop-line_ids", f"{LABEL['m05']} is closed"),
    }  # fmt: skip
    for op, (fields, at, said) in tries.items():
        answer = fiona.post(
            f"/scenarios/{sid}/changes", data={"csrf_token": token, "op": op, "revision": "1", **fields}
        )
        body = answer.get_data(as_text=True)
        assert answer.status_code == 422, op
        assert f'<a href="#field-{at}">{said}; a scenario changes open months only</a>' in body, summary(body)
        assert re.search(rf'id="error-{at}">.*?{said}', body, re.S), op
        assert revision(service, sid) == 1
    moved = fiona.post(
        f"/scenarios/{sid}/changes",
        data={"csrf_token": token, "op": "move", "revision": "1", "move.line_id": "EMEA-0001", "move.from": "m07",
              "move.to": "m06", "move.amount": "500.25"},
    )  # fmt: skip
    assert moved.status_code == 302 and revision(service, sid) == 2
    after = text(fiona.get(f"/scenarios/{sid}").get_data(as_text=True))
    assert f"Moved 500.25 (in the line's currency) of line EMEA-0001 from {LABEL['m07']} to {LABEL['m06']}" in after
    assert f"{LABEL['m06']}: $0.00 → $500.25" in after and f"{LABEL['m07']}: $1,500.25 → $1,000.00" in after


def test_a_form_made_on_an_older_revision_is_refused_and_what_was_typed_is_kept(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    sid = made(fiona, "Two tabs")
    older = fiona.get(f"/scenarios/{sid}").get_data(as_text=True)
    fields = {"csrf_token": csrf(older), "op": "scale", "revision": "1", "scale.channel": "Events",
              "scale.period": "Q3", "scale.factor": "0.9"}  # fmt: skip
    assert fiona.post(f"/scenarios/{sid}/changes", data=fields).status_code == 302
    again = fiona.post(f"/scenarios/{sid}/changes", data={**fields, "scale.factor": "0.7"})
    body = again.get_data(as_text=True)
    assert again.status_code == 422
    assert f"Scenario {sid} is at revision 2, not 1: read it again" in summary(body)
    assert 'value="0.7"' in body and revision(service, sid) == 2


def test_only_another_finance_user_promotes_a_scenario_to_the_allocations(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    sid = made(fiona, "To the allocations", **{"scale.channel": "Webinars", "scale.period": "Q4",
                                              "scale.factor": "2"})  # fmt: skip
    page = fiona.get(f"/scenarios/{sid}").get_data(as_text=True)
    refused = fiona.post(f"/scenarios/{sid}/promote", data={"csrf_token": csrf(page), "promote.as": "allocations"})
    assert refused.status_code == 409
    assert "another finance user must promote it to the allocations" in summary(refused.get_data(as_text=True))
    frank = signed_in(service, "frank")
    page = frank.get(f"/scenarios/{sid}").get_data(as_text=True)
    promoted = frank.post(
        f"/scenarios/{sid}/promote",
        data={"csrf_token": csrf(page), "promote.as": "allocations", "promote.comment": "agreed"},
    )
    assert promoted.status_code == 302
    shown = text(frank.get(f"/scenarios/{sid}").get_data(as_text=True))
    allocations = service.client.get("/api/v1/allocations", headers=auth(service.tokens["finance"])).get_json()
    assert f"It became allocation revision {allocations['revision']} for EMEA." in shown
    assert "is promoted to the allocations" in shown


def test_a_marketer_is_told_scenarios_are_finances(service: Service) -> None:
    maria = signed_in(service, "maria")
    answer = maria.get("/scenarios")
    assert answer.status_code == 403
    assert "only finance tries what-if scenarios" in text(answer.get_data(as_text=True)).lower()
    fiona = signed_in(service, "fiona")
    sid = made(fiona, "Finance only")
    assert maria.get(f"/scenarios/{sid}").status_code == 403
    assert maria.get(f"/scenarios/compare?ids={sid}&ids={sid + 1}").status_code == 403


def test_comparing_needs_two_scenarios(service: Service) -> None:
    fiona = signed_in(service, "fiona")
    sid = made(fiona, "Alone")
    answer = fiona.get(f"/scenarios/compare?ids={sid}")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert summary(body) == "There is a problem Choose two or more scenarios to compare."
    assert f'id="compare-{sid}" checked' in body
