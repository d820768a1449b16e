"""The read model's parts: each built once from immutable rows, kept by the ids it was built from, then composed.

A master is composed of one part per team's approved submission (its stored lines, typed, with
their planned spend at the money grain) and one per import (actual spend, its months, the CRM
results in force, the POs and invoices in force, the closed accruals). Submissions and imports
are never changed once stored, so a part is keyed by its ids and never goes stale: a new
approval builds one team's part and composes the other 499 as they were; an import builds its
own part and re-aligns it to each team's lines (a few vector operations per team, kept per
(submission, import)). Each process keeps parts in memory (`PARTS`), and every worker shares
them through Redis when a shared cache is configured.

`Lines` is the master's lines as dicts without copying them: each team part's stored dicts, with
the actual and committed spend in force laid over them when a line is read.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from addin import reporting as grain
from addin.fx import rate_fractions
from sheet_templates.money import scale_by_ratios
from sheet_templates.schema import ColumnType, PlanSchema
from sync_service.platform.storage import SubmissionLine


class Cache:
    """A few values by key, the least recently used dropped first; safe across threads."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: Any, value: Any) -> Any:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def through(self, key: Any, make: Callable[[], Any]) -> Any:
        found = self.get(key)
        return found if found is not None else self.put(key, make())

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


PARTS = Cache(4096)  # team parts, one per approved submission: 500 teams' current and previous plans
INPUTS = Cache(64)  # import parts: the few imports current masters are built from


@dataclass(frozen=True, eq=False)
class TeamPart:
    """One team's approved submission as the read model holds it. Built once per submission."""

    team: str
    submission: int
    lines: tuple[dict[str, Any], ...]  # stored values (cents, ISO dates), with team_id and _row: never changed
    columns: Mapping[str, np.ndarray]  # the typed plan table's columns (`typed_columns`)
    months: np.ndarray  # planned spend per line and fiscal month, reporting cents (lines x 12)
    planned: np.ndarray  # planned spend for the year per line, in the line's currency (cents)
    num: np.ndarray  # each line's plan rate as a fraction: numerator ...
    den: np.ndarray  # ... and denominator
    id_keys: np.ndarray  # each line's ID as a PO names it (any case): casefolded
    code_keys: np.ndarray  # each line's campaign code casefolded ("" without one)
    # What was aligned to this part's lines from an import, by (kind, import key): small arrays.
    aligned: OrderedDict[Any, Any] = field(default_factory=OrderedDict, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:  # the shared cache stores the part, not what was aligned to it
        state = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "aligned"}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "aligned", OrderedDict())

    def line_ids(self) -> list[str]:
        return [line["line_id"] for line in self.lines]

    def align(self, kind: str, key: Any, make: Callable[[TeamPart], Any]) -> Any:
        """`make(self)` for an import part (`kind`, `key`), kept with this part (a few imports at a time)."""
        slot = (kind, key)
        with _ALIGN_LOCK:
            if slot in self.aligned:
                return self.aligned[slot]
        value = make(self)
        with _ALIGN_LOCK:
            self.aligned[slot] = value
            while len(self.aligned) > 16:
                self.aligned.popitem(last=False)
        return value


_ALIGN_LOCK = threading.Lock()


def typed_columns(lines: Sequence[Mapping[str, Any]], schema: PlanSchema) -> dict[str, np.ndarray]:
    """Stored lines as the plan table's columns the reader makes: cents as int64, dates as datetime64, blanks as ''."""
    data: dict[str, Any] = {
        "team_id": np.array([line["team_id"] for line in lines], dtype=object),
        "_row": np.array([line.get("_row") or 0 for line in lines], dtype=np.int64),
    }
    for col in schema.input_columns:
        values = [line.get(col.name) for line in lines]
        if col.type in (ColumnType.MONEY, ColumnType.COUNT):
            data[col.name] = np.array([v or 0 for v in values], dtype=np.int64)
        elif col.type is ColumnType.DATE:
            data[col.name] = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce").to_numpy()
        else:
            data[col.name] = np.array(["" if v is None else v for v in values], dtype=object)
    return data


def _team_part(team: str, submission: int, lines: list[dict[str, Any]], schema: PlanSchema) -> TeamPart:
    columns = typed_columns(lines, schema)
    table = pd.DataFrame(columns)
    months = grain.month_cents(table, schema)
    names = [c.name for c in schema.month_columns]
    planned = np.array(table[names].to_numpy(dtype=np.int64).sum(axis=1), dtype=np.int64) if lines else np.zeros(0)
    num, den = rate_fractions(columns["currency"], schema.config.plan_rates)  # as `month_cents` converted them
    id_keys = np.array([str(v).casefold() for v in columns["line_id"].tolist()], dtype=object)
    code_keys = np.array([str(v or "").casefold() for v in columns["campaign_code"].tolist()], dtype=object)
    return TeamPart(
        team, submission, tuple(lines), columns, months, planned.astype(np.int64), num, den, id_keys, code_keys
    )


def team_parts(
    session: Session, schema: PlanSchema, held: Sequence[tuple[str, int]], shared: Any = None
) -> list[TeamPart]:
    """The part of each (team, submission) in `held`, in that order: from memory, the shared cache, else built.

    The lines of every submission not in memory are read in one query.
    """
    where = str(session.get_bind().url)
    keys = {sid: (where, schema.version, repr(schema.config), "team", sid) for _, sid in held}
    found: dict[int, TeamPart] = {}
    for _, sid in held:
        part = PARTS.get(keys[sid])
        if part is not None:
            found[sid] = part
    missing = [(team, sid) for team, sid in held if sid not in found]
    if missing and shared is not None:
        names = {sid: shared.name(*keys[sid]) for _, sid in missing}
        for sid, part in zip(names, shared.get_many(list(names.values())), strict=True):
            if part is not None:
                found[sid] = PARTS.put(keys[sid], part)
        missing = [(team, sid) for team, sid in missing if sid not in found]
    if missing:
        team_of = dict((sid, team) for team, sid in missing)
        rows = session.execute(
            select(SubmissionLine.submission_id, SubmissionLine.row, SubmissionLine.values)
            .where(SubmissionLine.submission_id.in_(list(team_of)))
            .order_by(SubmissionLine.submission_id, SubmissionLine.position)
        )
        grouped: dict[int, list[dict[str, Any]]] = {sid: [] for sid in team_of}
        for sid, row, values in rows:
            grouped[sid].append({"team_id": team_of[sid], "_row": row, **values})
        built = {sid: _team_part(team_of[sid], sid, lines, schema) for sid, lines in grouped.items()}
        if shared is not None:
            shared.put_many({shared.name(*keys[sid]): part for sid, part in built.items()})
        for sid, part in built.items():
            found[sid] = PARTS.put(keys[sid], part)
    return [found[sid] for _, sid in held]


def concatenated(parts: Sequence[TeamPart], pick: Callable[[TeamPart], np.ndarray], empty: np.ndarray) -> np.ndarray:
    """One array of every part's `pick(part)`, in the parts' order."""
    arrays = [pick(p) for p in parts]
    return np.concatenate(arrays) if arrays else empty


def composed_table(parts: Sequence[TeamPart], schema: PlanSchema) -> pd.DataFrame:
    """The plan table of every part's lines, one column at a time."""
    if not parts:
        return pd.DataFrame(typed_columns([], schema))
    names = list(parts[0].columns)
    return pd.DataFrame({n: np.concatenate([p.columns[n] for p in parts]) for n in names})


def to_reporting(cents: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per-line amounts in the lines' currencies (lines, or lines x months) in reporting cents at the plan rates.

    `num` and `den`: each line's plan rate as a fraction (`addin.fx.rate_fractions`, kept with its team part).
    """
    if not len(cents):
        return np.asarray(cents, dtype=np.int64)
    if np.ndim(cents) == 2:
        return scale_by_ratios(cents, num[:, None], den[:, None])
    return scale_by_ratios(cents, num, den)


class Lines(Sequence[dict[str, Any]]):
    """The master's lines as dicts: each stored line, with the read model's values in force laid over it when read.

    Nothing is copied until a line is read: 100,000 lines compose as a list of references and a
    few arrays (`over`: column name -> one value per line, e.g. the imported actual spend).
    """

    __slots__ = ("_base", "_over")

    def __init__(self, base: Sequence[dict[str, Any]], over: Mapping[str, np.ndarray] | None = None) -> None:
        self._base = base
        self._over = dict(over or {})

    def __len__(self) -> int:
        return len(self._base)

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, k: slice) -> Lines: ...

    def __getitem__(self, k: int | slice) -> dict[str, Any] | Lines:
        if isinstance(k, slice):
            return Lines(self._base[k], {n: a[k] for n, a in self._over.items()})
        line = self._base[k]
        if not self._over:
            return line
        return {**line, **{n: int(a[k]) for n, a in self._over.items()}}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self._over:
            yield from self._base
            return
        names = list(self._over)
        for line, *values in zip(self._base, *(a.tolist() for a in self._over.values()), strict=True):
            yield {**line, **dict(zip(names, values, strict=True))}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # a sequence of dicts, compared by value

    def __repr__(self) -> str:
        return f"Lines({len(self)} lines)"

    def take(self, indices: np.ndarray) -> Lines:
        """The lines at `indices`, in that order."""
        base = self._base
        return Lines([base[k] for k in indices.tolist()], {n: a[indices] for n, a in self._over.items()})

    def stored(self) -> Sequence[dict[str, Any]]:
        """The lines as stored, without the values laid over them (what matching by line ID reads)."""
        return self._base

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lines, (list(self._base), self._over))


def chained(parts: Sequence[TeamPart]) -> list[dict[str, Any]]:
    """Every part's stored lines, in the parts' order (references, not copies)."""
    return list(itertools.chain.from_iterable(p.lines for p in parts))
