"""Calling the service's API from a test: the bearer header, the problem-details check, plan uploads, decisions."""

from __future__ import annotations

import io
from typing import Any


def problem(response: Any, status: int) -> dict[str, Any]:
    """Every error answer has one shape: RFC 9457 problem details."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= body.keys() and body["status"] == status
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(
    client: Any,
    token: str,
    data: bytes,
    team: str = "EMEA-ENTERPRISE",
    name: str = "plan.xlsx",
    based_on: int | None = None,
) -> Any:
    form = {"team": team, "file": (io.BytesIO(data), name)}
    if based_on is not None:
        form["based_on_submission"] = str(based_on)
    return client.post("/api/v1/submissions", headers=auth(token), data=form, content_type="multipart/form-data")


def decide(client: Any, token: str, submission: int, action: str, comment: str = "") -> Any:
    return client.post(f"/api/v1/submissions/{submission}/{action}", headers=auth(token), json={"comment": comment})
