"""The audit log in words: what each recorded action and target means to the person reading the log.

The domains record `AuditEvent`s with a machine code (`submission.approve`, `periods.lock`) that the
API and exports keep; pages and emails read them through this table. A code no entry describes
(one added since) is put into words from the code itself, so the log never shows a bare code.
"""

from __future__ import annotations

from collections.abc import Callable

from sheet_templates.formatting import words

# Every action the service records, as "<done> <what>" ("Approved a plan"); by the domain that records it.
ACTION_WORDS: dict[str, str] = {
    # planning: submissions, approval chains, cycles, month locks, scenarios, fiscal years
    "submission.create": "Submitted a plan",
    "submission.step_approved": "Approved a plan at their step",
    "submission.approve": "Approved a plan",
    "submission.reject": "Rejected a plan",
    "cycle.opened": "Opened a reforecast cycle",
    "cycle.closed": "Closed a reforecast cycle",
    "periods.lock": "Locked months",
    "periods.unlock": "Unlocked months",
    "periods.reopen": "Reopened closed months",
    "scenario.created": "Made a what-if scenario",
    "scenario.changed": "Changed a what-if scenario",
    "scenario.discarded": "Discarded a what-if scenario",
    "scenario.promoted": "Promoted a what-if scenario",
    "year.close": "Closed a fiscal year",
    # budget: allocations, baselines, transfers
    "allocations.set": "Set the allocations",
    "allocations.change": "Changed the allocations",
    "baseline.locked": "Locked a budget baseline",
    "baseline.rebaselined": "Locked a new budget baseline",
    "transfer.requested": "Asked for a budget transfer",
    "transfer.approved": "Approved a budget transfer",
    "transfer.rejected": "Rejected a budget transfer",
    # spend and results: imports
    "actuals.import": "Imported actual spend",
    "purchase_orders.import": "Imported purchase orders",
    "invoices.import": "Imported invoices",
    "outcomes.import": "Imported CRM results",
    "accrual.close": "Closed a month's accruals",
    "import_profile.created": "Saved an import mapping",
    "import_profile.changed": "Changed an import mapping",
    "import_profile.retired": "Retired an import mapping",
    # access, notices, Google Sheets
    "token.create": "Created an API token",
    "token.revoke": "Revoked an API token",
    "user.sso_create": "Signed in for the first time with single sign-on",
    "user.sso_update": "Had their role or teams changed by single sign-on",
    "reminder.sent": "Sent a plan reminder",
    "gsheets.create": "Made a team's Google sheet",
    "gsheets.push": "Pushed the master to Google Sheets",
}

# What an event's target ("submission:12") names, by its kind.
TARGET_WORDS: dict[str, str] = {
    "submission": "Plan",
    "transfer": "Transfer",
    "scenario": "Scenario",
    "cycle": "Reforecast cycle",
    "baseline": "Baseline",
    "allocations": "Allocation revision",
    "actuals": "Actuals import",
    "outcomes": "CRM results import",
    "spend_import": "Spend import",
    "year": "FY",
    "accrual": "Accruals of",
    "team": "Team",
    "user": "User",
    "spreadsheet": "Google sheet",
    "periods": "Months",
}


def action_words(code: str) -> str:
    """An audit action's code in words ("submission.approve" → "Approved a plan")."""
    return ACTION_WORDS.get(code) or words(code)


def target_words(action: str, target: str, month: Callable[[str], str] = str) -> str:
    """What an event of `action` was done to, in words: "submission:12" → "Plan #12", "user:maria" → "User maria".

    `month` names a month key ("m03") as people read it, for the accruals of a month.
    """
    kind, _, ident = str(target).partition(":")
    if action.startswith("import_profile."):  # its target is the import's kind and the mapping's name
        return f"Mapping {ident!r} of {words(kind).lower()}" if ident else str(target)
    name = TARGET_WORDS.get(kind)
    if name is None:
        return str(target)
    if not ident:
        return name
    if kind == "year":
        return f"FY{ident}"
    if kind == "accrual":
        return f"{name} {month(ident)}"
    return f"{name} #{ident}" if ident.isdigit() else f"{name} {ident}"
