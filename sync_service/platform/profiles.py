"""Import profiles: saved column mappings, by kind of import and name.

Finance saves how an export it receives every month is read (which column is which field, the
words it writes for a status, its date order) once, and names it on each import
(`?profile=netsuite-emea`), or lets it be remembered: a profile with `remember` reads every
export of its kind whose header carries each header it maps, before any preset is looked for.
A profile is changed by saving it again: every revision is kept (append-only) and the newest is
in force; retiring one is a revision too. The import's answer says which profile read it.

Who may save or read profiles is the API's gate (finance); this module checks what is saved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_service.platform.errors import Conflict, NotFound, Unprocessable
from sync_service.platform.presets import FIELDS, KINDS, WORDS, How, Remembered
from sync_service.platform.storage import AuditEvent, ImportProfile, Store, User, aware

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MAX_HEADER = 200
MAX_WORDS = 200


def _current(session: Session, kind: str | None = None) -> dict[tuple[str, str], ImportProfile]:
    """{(kind, name casefolded): the newest revision} of every profile (retired ones included)."""
    query = select(ImportProfile).order_by(ImportProfile.id)
    if kind is not None:
        query = query.where(ImportProfile.kind == kind)
    return {(p.kind, p.name.casefold()): p for p in session.scalars(query)}


def describe(session: Session, profile: ImportProfile) -> dict[str, Any]:
    by = session.get(User, profile.user_id)
    return {
        "kind": profile.kind,
        "name": profile.name,
        "fields": dict(profile.fields),
        "values": {k: dict(v) for k, v in (profile.values or {}).items()},
        "date_order": profile.date_order,
        "remember": profile.remember,
        "retired": profile.retired,
        "comment": profile.comment,
        "revision": profile.id,
        "saved_by": by.name if by else None,
        "saved_at": aware(profile.created_at).isoformat(),
    }


def listing(session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    """Every profile in force (not retired), by kind and name."""
    found = [p for p in _current(session, kind).values() if not p.retired]
    return [describe(session, p) for p in sorted(found, key=lambda p: (p.kind, p.name.casefold()))]


def _checked(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The profile a request describes, every mistake named at its field (422)."""
    problems: list[dict[str, str]] = []
    fields = body.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        problems.append({"at": "fields", "message": "map at least one field to the export's header, e.g. "
                         '{"po_number": "Document Number"}'})  # fmt: skip
        fields = {}
    known = FIELDS[kind]
    for name, header in fields.items():
        if name not in known:
            problems.append({"at": f"fields.{name}", "message": f"not a field of {kind}; use {', '.join(known)}"})
        elif not isinstance(header, str) or not header.strip() or len(header) > MAX_HEADER:
            problems.append({"at": f"fields.{name}", "message": f"the export's header, 1 to {MAX_HEADER} characters"})
    values = body.get("values") or {}
    if not isinstance(values, Mapping):
        problems.append({"at": "values", "message": 'a field\'s words, e.g. {"status": {"Pending Bill": "open"}}'})
        values = {}
    for name, words in values.items():
        allowed = WORDS.get(kind, {}).get(name)
        if allowed is None:
            fields_with_words = ", ".join(WORDS.get(kind, {})) or "none"
            problems.append({"at": f"values.{name}", "message": f"no words to map here; fields: {fields_with_words}"})
            continue
        if not isinstance(words, Mapping) or len(words) > MAX_WORDS:
            problems.append({"at": f"values.{name}", "message": f"up to {MAX_WORDS} words, each to one of "
                             + ", ".join(allowed)})  # fmt: skip
            continue
        for word, meaning in words.items():
            if not isinstance(meaning, str) or meaning not in allowed or len(str(word)) > MAX_HEADER:
                problems.append({"at": f"values.{name}.{word}", "message": f"use {', '.join(allowed)}"})
    date_order = body.get("date_order")
    if date_order not in (None, "dmy", "mdy"):
        problems.append({"at": "date_order", "message": "dmy (04/05/2026 is 4 May) or mdy (April 5)"})
    remember = body.get("remember", False)
    if not isinstance(remember, bool):
        problems.append({"at": "remember", "message": "true or false"})
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 1000:
        problems.append({"at": "comment", "message": "text of at most 1,000 characters"})
    if problems:
        raise Unprocessable(f"{len(problems)} field(s) of the import profile are not valid; nothing was saved",
                            issues=problems)  # fmt: skip
    return {
        "fields": {name: header.strip() for name, header in fields.items()},
        "values": {name: {str(w).strip(): m for w, m in words.items()} for name, words in values.items()},
        "date_order": date_order,
        "remember": remember,
        "comment": comment.strip(),
    }


def save(
    store: Store, user: User, kind: str, name: str, body: Mapping[str, Any], *, new: bool, retire: bool = False
) -> dict[str, Any]:
    """Save a revision of profile `name` of `kind`: a new one (`new`, 409 if it exists) or a change (404 if not)."""
    if kind not in KINDS:
        raise NotFound(f"there are no import profiles of {kind!r}; kinds: {', '.join(KINDS)}")
    if not isinstance(name, str) or not NAME.match(name):
        raise Unprocessable("name: 1 to 100 letters, digits, spaces, dots, dashes or underscores",
                            issues=[{"at": "name", "message": "letters, digits, spaces, . _ -"}])  # fmt: skip
    with store.transaction() as session:
        held = _current(session, kind).get((kind, name.casefold()))
        live = held is not None and not held.retired
        if new and live:
            raise Conflict(f"there is already a {kind.replace('_', ' ')} profile {held.name!r}; change it with PUT")
        if not new and not live:
            raise NotFound(f"there is no {kind.replace('_', ' ')} profile {name!r}")
        if retire:
            assert held is not None
            checked = {"fields": dict(held.fields), "values": dict(held.values or {}), "date_order": held.date_order,
                       "remember": False, "comment": str(body.get("comment", ""))[:1000]}  # fmt: skip
        else:
            checked = _checked(kind, body)
        profile = ImportProfile(kind=kind, name=name, user_id=user.id, retired=retire, **checked)
        session.add(profile)
        session.flush()
        action = "retired" if retire else ("created" if new else "changed")
        session.add(AuditEvent(user_id=user.id, action=f"import_profile.{action}", target=f"{kind}:{name}",
                               detail={"revision": profile.id}))  # fmt: skip
        return describe(session, profile)


def how(
    store: Store, kind: str, profile: str | None = None, preset: str | None = None, date_order: str | None = None
) -> How:
    """How an import of `kind` reads its export: the profile named (404 naming those there are), or a preset.

    Without a profile named, every remembered profile of the kind is offered for an export whose
    header carries its headers.
    """
    with store.reading() as session:
        found = {n: p for (k, n), p in _current(session, kind).items() if not p.retired}
    if profile is not None:
        chosen = found.get(profile.casefold())
        if chosen is None:
            listed = ", ".join(sorted(p.name for p in found.values())) or "none yet (POST /api/v1/import-profiles)"
            raise NotFound(f"profile: there is no {kind.replace('_', ' ')} profile {profile!r}; there are {listed}")
        return How(preset, dict(chosen.fields), chosen.name, dict(chosen.values or {}), date_order or chosen.date_order)
    remembered = tuple(
        Remembered(p.name, dict(p.fields), dict(p.values or {}), p.date_order)
        for p in sorted(found.values(), key=lambda p: p.id)
        if p.remember
    )
    return How(preset, date_order=date_order, remembered=() if preset else remembered)
