"""The root of Plansheet's exception hierarchy.

Every error Plansheet raises on purpose derives from `PlansheetError` and carries a
message a marketer or finance user understands; callers show `str(error)` as it is.
"""

from __future__ import annotations


class PlansheetError(Exception):
    """An expected failure with a message fit to show to the user."""

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + ":\n" + "\n".join(f"  - {d}" for d in self.details)


class ConfigError(PlansheetError):
    """The organisation's configuration file is missing or wrong."""
