"""imports pages (being built)."""

from __future__ import annotations

from sync_service.web.base import bp

__all__ = ["bp"]
