"""The management pack's routes: the packs built, their files, building one on demand, and who receives it."""

from __future__ import annotations

import io

from flask import current_app, jsonify, send_file
from flask.typing import ResponseReturnValue

from sync_service.api import contracts as c
from sync_service.api.base import bp, finance_gate, job_answer, planner_gate
from sync_service.api.caller import current_user
from sync_service.api.contracts import operation
from sync_service.documents import packs
from sync_service.notifications import subscriptions
from sync_service.platform.context import schema as app_schema
from sync_service.platform.context import store as app_store


@operation(
    bp,
    "GET",
    "/api/v1/packs",
    "The monthly management packs of the year the caller may see (finance: all), newest first",
    response=c.Packs,
    errors=(403,),
    gate=planner_gate,
)
def list_packs() -> ResponseReturnValue:
    user = current_user()
    found = packs.listing(app_store(), app_schema(), user)
    with app_store().reading() as session:
        subscribed = subscriptions.subscribed(session, user.id)
    return jsonify({"packs": found, "subscribed": subscribed})


@operation(
    bp,
    "POST",
    "/api/v1/packs",
    "Build a month's management pack as a background job (202), and email it to the subscribers if asked",
    response=c.JobAnswer,
    status=202,
    errors=(403, 404, 409),
    body=c.PackBody,
    body_required=False,
    gate=finance_gate("builds the management pack"),
)
def build_pack(body: c.PackBody) -> ResponseReturnValue:
    user = current_user()
    return job_answer(user, packs.request_pack(current_app, app_schema(), user, body.month, body.email))


@operation(
    bp,
    "GET",
    "/api/v1/packs/<int:pack_id>",
    "A management pack: its month, whose figures, what they came from, and its files",
    response=c.PackAnswer,
    errors=(403, 404),
    gate=planner_gate,
)
def get_pack(pack_id: int) -> ResponseReturnValue:
    return jsonify(packs.get(app_store(), app_schema(), current_user(), pack_id))


def _download(pack_id: int, kind: str) -> ResponseReturnValue:
    name, media_type, data = packs.file_of(app_store(), current_user(), pack_id, kind)
    return send_file(io.BytesIO(data), mimetype=media_type, as_attachment=True, download_name=name)


@operation(
    bp,
    "GET",
    "/api/v1/packs/<int:pack_id>/workbook",
    "A management pack's workbook (xlsx)",
    response=None,
    errors=(403, 404),
    produces=packs.XLSX_TYPE,
    gate=planner_gate,
)
def pack_workbook(pack_id: int) -> ResponseReturnValue:
    return _download(pack_id, "xlsx")


@operation(
    bp,
    "GET",
    "/api/v1/packs/<int:pack_id>/pdf",
    "A management pack's PDF (404 saying why when none was made)",
    response=None,
    errors=(403, 404),
    produces=packs.PDF_TYPE,
    gate=planner_gate,
)
def pack_pdf(pack_id: int) -> ResponseReturnValue:
    return _download(pack_id, "pdf")


@operation(
    bp,
    "GET",
    "/api/v1/me/pack-subscription",
    "Whether the caller receives the monthly management pack by email, and at which address",
    response=c.PackSubscriptionAnswer,
    errors=(403,),
    gate=planner_gate,
)
def my_pack_subscription() -> ResponseReturnValue:
    with app_store().reading() as session:
        return jsonify(subscriptions.state(session, current_user()))


@operation(
    bp,
    "PUT",
    "/api/v1/me/pack-subscription",
    "Start or stop receiving the monthly management pack by email",
    response=c.PackSubscriptionAnswer,
    errors=(403, 409),
    body=c.PackSubscriptionBody,
    gate=planner_gate,
)
def set_my_pack_subscription(body: c.PackSubscriptionBody) -> ResponseReturnValue:
    answer = subscriptions.subscribe(app_store(), current_app.config, current_user(), body.subscribed)
    return jsonify(answer)
