"""Who is calling the API: the user of the request's bearer token, resolved once per request."""

from __future__ import annotations

from flask import g, request

from sync_service.access.auth import resolve_token
from sync_service.platform import context
from sync_service.platform.errors import Unauthorized
from sync_service.platform.storage import TokenScope, User


def current_user(accepts: tuple[str, ...] = (TokenScope.FULL.value,), what: str = "this request") -> User:
    """The user of the request's bearer token; 401 without a valid one, 403 when its scope is not in `accepts`.

    The operation's declaration calls it first, with its scopes; later calls in the view reuse the answer.
    """
    if "user" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'")
        with context.store().reading() as session:
            user = resolve_token(session, token.strip(), tuple(TokenScope(a) for a in accepts), what)
            user.teams  # noqa: B018 - load the teams while the session is open
            g.user = user
    return g.user
