"""Every setting of the sync service: its name, default and what it does (checked at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS = (
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL of the database; default: a SQLite file plansheet.db in the "
        "instance folder. Also read from the DATABASE_URL environment variable.",
    ),
    Setting(
        "ORG_CONFIG",
        None,
        "Path of the organisation's TOML configuration; default $PLANSHEET_CONFIG or the bundled sample.",
    ),
    Setting("MAX_CONTENT_LENGTH", 20 * 2**20, "Largest request body accepted, in bytes (413 beyond it)."),
    Setting(
        "OVER_ALLOCATION",
        "flag",
        "What a plan over its region's allocation gets: 'flag' (accepted and approved with a warning) "
        "or 'refuse' (422 at submission, 409 at approval).",
    ),
    Setting("SECRET_KEY", None, "Secret for signed sessions (the dashboard); set it in production."),
)
DEFAULTS = {s.name: s.default for s in SETTINGS}
