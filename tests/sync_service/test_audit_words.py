"""Every audit action the service records has its words for the log, and targets read as people name them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sync_service
from sync_service.platform.audit import ACTION_WORDS, action_words, target_words

CODE = re.compile(r"[a-z_]+\.[a-z_]+")


def action_expressions(tree: ast.AST) -> list[ast.expr]:
    """Where a module names an audit action: AuditEvent(action=...), _audit(user, action, ...), and the
    (action, "kind:id", detail) triple an import hands to `platform.imports.finish`."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name == "AuditEvent":
                found += [k.value for k in node.keywords if k.arg == "action"]
            elif name == "_audit" and len(node.args) > 1:
                found.append(node.args[1])
        elif isinstance(node, ast.Tuple) and len(node.elts) == 3 and isinstance(node.elts[1], ast.JoinedStr):
            head = node.elts[1].values[0]
            if isinstance(head, ast.Constant) and str(head.value).endswith(":"):
                found.append(node.elts[0])
    return found


def recorded_actions() -> tuple[set[str], set[tuple[str, str]]]:
    """(the action codes written as text; (prefix, suffix) of each built by an f-string, as f"transfer.{action}")."""
    codes: set[str] = set()
    built: set[tuple[str, str]] = set()
    pending = []
    for path in Path(sync_service.__file__).parent.rglob("*.py"):
        pending += action_expressions(ast.parse(path.read_text(encoding="utf-8")))
    while pending:
        expr = pending.pop()
        if isinstance(expr, ast.IfExp):
            pending += [expr.body, expr.orelse]
        elif isinstance(expr, ast.Constant) and isinstance(expr.value, str) and CODE.fullmatch(expr.value):
            codes.add(expr.value)
        elif isinstance(expr, ast.JoinedStr):
            texts = [v.value if isinstance(v, ast.Constant) else "" for v in expr.values]
            built.add((texts[0], texts[-1]))
    return codes, built


def test_every_recorded_audit_action_has_its_words() -> None:
    codes, built = recorded_actions()
    assert {"submission.create", "periods.lock", "periods.reopen", "user.sso_update", "actuals.import"} <= codes
    missing = sorted(codes - ACTION_WORDS.keys())
    assert not missing, f"add these audit actions to ACTION_WORDS: {missing}"
    for prefix, suffix in built:  # f"submission.{action[:-1]}", f"{kind}.import"
        assert prefix or suffix, (prefix, suffix)
        assert any(k.startswith(prefix) and k.endswith(suffix) for k in ACTION_WORDS), (prefix, suffix)


def test_actions_and_targets_read_as_words() -> None:
    assert action_words("submission.approve") == "Approved a plan"
    assert action_words("budget.something_new") == "Something new"  # one added since: never a bare code
    assert target_words("submission.approve", "submission:12") == "Plan #12"
    assert target_words("token.create", "user:maria") == "User maria"
    assert target_words("year.close", "year:2027") == "FY2027"
    assert target_words("accrual.close", "accrual:m03", {"m03": "Apr 2026"}.get) == "Accruals of Apr 2026"
    assert target_words("import_profile.created", "purchase_orders:SAP") == "Mapping 'SAP' of purchase orders"
    assert target_words("x.y", "somewhere else") == "somewhere else"


def test_every_rule_the_service_reports_has_its_words() -> None:
    from addin.issues import Rule
    from sync_service.platform.errors import SERVICE_RULE_TITLES, rule_words

    found = set()
    for path in Path(sync_service.__file__).parent.rglob("*.py"):
        found |= set(re.findall(r'"rule": "([a-z_]+\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert {"period.locked", "allocation.over"} <= found
    missing = sorted(found - SERVICE_RULE_TITLES.keys() - {str(r) for r in Rule})
    assert not missing, f"add these rules to SERVICE_RULE_TITLES: {missing}"
    assert rule_words("cell.allowed_value") == "Not one of the allowed values"
    assert rule_words("period.locked") == "Month locked"
    assert rule_words("budget.brand_new") == "Brand new"  # one added since: never a bare code
