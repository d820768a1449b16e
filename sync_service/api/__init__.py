"""API v1 (JSON): each view declares its contract, calls the domain, and serialises its answer.

One module per domain (`planning`, `budget`, `spend`, `results`, `master`, `documents`, `access`,
`google`, `addin`, `platform`), all on the one blueprint of `base`. The `@operation` declarations
(`contracts`) register each route once: they authenticate, check the caller's role where no
input is needed for it, validate the path, query and body against the request models, and
generate the OpenAPI document; a view receives validated models only.
"""

from __future__ import annotations

from flask import Blueprint

from sync_service.api import access, addin, budget, documents, google, master, planning, platform, results, spend
from sync_service.api.base import bp

# Every module whose routes are on `bp` (importing one declares its routes).
ROUTES = (platform, planning, master, budget, spend, results, documents, access, google, addin)


def blueprint() -> Blueprint:
    """The API's blueprint, with every domain's routes declared on it."""
    assert all(module.bp is bp for module in ROUTES)
    return bp
