"""Property tests of the request bounds: inside them a request is read, beyond them it is refused before work."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from sheet_templates import build_schema, load_config
from sheet_templates.money import MAX_AMOUNT, money_text, parse_amount_text, to_cents
from sync_service.api import contracts
from sync_service.api.request_body import limits, read_json
from sync_service.platform.context import SCHEMA
from sync_service.platform.errors import ServiceError, TooLarge

PLAN = build_schema(load_config())


@pytest.fixture(scope="module")
def app() -> Flask:
    app = Flask("bounds")
    app.extensions[SCHEMA] = PLAN
    return app


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
bodies = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=60,
)


@settings(max_examples=200, deadline=None)
@given(body=bodies)
def test_any_json_within_the_limits_reads_as_it_was_sent(app: Flask, body: Any) -> None:
    raw = json.dumps(body).encode()
    with app.app_context():
        assert read_json(raw, "application/json") == json.loads(raw)


@settings(max_examples=25, deadline=None)
@given(extra=st.integers(1, 5000), kind=st.sampled_from([b"{}", b"[]"]))
def test_more_objects_than_the_limit_are_refused_before_parsing(app: Flask, extra: int, kind: bytes) -> None:
    with app.app_context():
        containers, _ = limits()
        raw = b"[" + b",".join([kind] * (containers + extra)) + b"]"
        with pytest.raises(TooLarge):
            read_json(raw, "application/json")


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet='{}[]"', min_size=1, max_size=200))
def test_braces_inside_strings_do_not_count_as_objects(app: Flask, text: str) -> None:
    with app.app_context():
        containers, _ = limits()
        raw = json.dumps({"team": "EMEA-ENTERPRISE", "lines": [{"notes": text * (containers // len(text) + 1)}]})
        assert read_json(raw.encode(), "application/json")["lines"][0]["notes"].startswith(text)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(0, 2**31 - 1) | st.integers(2**31, 2**80))
def test_ids_are_accepted_exactly_within_the_databases_32_bits(value: int) -> None:
    body = {"team": "T", "lines": [], "based_on": {"submission": value}}
    if value <= contracts.ID_MAX:
        assert contracts.validated(contracts.SubmissionJson, body, "body").based_on.submission == value
    else:
        with pytest.raises(ServiceError, match=r"based_on\.submission"):
            contracts.validated(contracts.SubmissionJson, body, "body")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30))
def test_a_comment_with_a_control_character_is_refused_and_any_other_is_kept(text: str) -> None:
    controls = any((ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F for c in text)
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    if controls or surrogate:
        with pytest.raises(ServiceError):
            contracts.validated(contracts.DecisionBody, {"comment": text}, "body")
    else:
        assert contracts.validated(contracts.DecisionBody, {"comment": text}, "body").comment == text


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(-MAX_AMOUNT * 100, MAX_AMOUNT * 100))
def test_money_text_reads_back_to_the_same_cents(cents: int) -> None:
    assert to_cents(money_text(cents)) == cents
    assert parse_amount_text(money_text(cents)) == Decimal(cents) / 100


@settings(max_examples=100, deadline=None)
@given(units=st.integers(MAX_AMOUNT + 1, 10**30))
def test_an_amount_beyond_the_limit_is_not_an_amount(units: int) -> None:
    assert to_cents(units) is None
    assert to_cents(str(units)) is None
