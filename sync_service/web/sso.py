"""Single sign-on for the dashboard: OpenID Connect through Authlib, role and teams from the provider's claims.

The authorization-code flow with PKCE, state and nonce; the ID token is checked against the
provider's discovery document and keys (signature, issuer, audience, expiry, nonce). Who the
person is, and what their claims grant, is decided in `sync_service.access.sso`. The session
begun is the one the password login begins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError
from werkzeug.exceptions import HTTPException

from sheet_templates.schema import PlanSchema
from sync_service.access.sso import SsoConfig, claim_values, grant_for, read_config, sign_on
from sync_service.platform.context import store as app_store
from sync_service.platform.storage import User
from sync_service.web.base import error_page
from sync_service.web.session import is_local, sign_in

SSO = "plansheet.sso"  # app.extensions key (the login page asks it for the button)
CLIENT = "sso"  # the provider's name in Authlib's registry
bp = Blueprint("sso", __name__)
# One role per user: when a person's groups grant several, the one that sees most of the plans wins.


# --- configuration -------------------------------------------------------------------------------------


def init_app(app: Flask, schema: PlanSchema) -> None:
    """Register the provider with Authlib and the sign-on routes, when OIDC_ISSUER is set."""
    config = read_config(app.config, schema)
    app.extensions[SSO] = config
    if config is None:
        return
    oauth = OAuth(app)
    oauth.register(
        CLIENT,
        client_id=str(app.config["OIDC_CLIENT_ID"]).strip(),
        client_secret=str(app.config["OIDC_CLIENT_SECRET"]).strip(),
        server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": str(app.config["OIDC_SCOPES"]), "code_challenge_method": "S256", "default_timeout": 15},
    )
    app.register_blueprint(bp)


def configured() -> SsoConfig | None:
    return current_app.extensions.get(SSO)


# --- the mapping ---------------------------------------------------------------------------------------


# --- the routes ----------------------------------------------------------------------------------------


@bp.errorhandler(HTTPException)
def _error_page(error: HTTPException) -> ResponseReturnValue:
    return error_page(error)


def _client() -> Any:
    return current_app.extensions["authlib.integrations.flask_client"].create_client(CLIENT)


@bp.get("/login/sso")
def login() -> ResponseReturnValue:
    """Send the browser to the provider; Authlib keeps state, nonce and the PKCE verifier in the session."""
    target = request.args.get("next", "")
    session["sso_next"] = target if is_local(target) else ""
    try:
        return _client().authorize_redirect(url_for("sso.callback", _external=True))
    except requests.RequestException:
        abort(502, f"{configured().provider_name} could not be reached; try again in a moment")


@bp.get("/login/sso/callback")
def callback() -> ResponseReturnValue:
    """Check the provider's answer (state, code with the PKCE verifier, ID token), map the claims, sign in."""
    config = configured()
    client = _client()
    try:
        token = client.authorize_access_token()
    except requests.RequestException as exc:
        current_app.logger.warning("single sign-on: the provider failed: %s", exc)
        abort(502, f"{config.provider_name} could not be reached; try again in a moment")
    except (AuthlibBaseError, JoseError) as exc:
        current_app.logger.warning("single sign-on refused: %s", exc)
        abort(
            400,
            "The sign-in could not be checked (it may have expired, or been started in another tab); "
            "nothing was changed. Start again from the login page.",
        )
    metadata = client.load_server_metadata()
    if str(metadata.get("issuer", "")).rstrip("/") != config.issuer:
        abort(502, f"{config.provider_name} names itself {metadata.get('issuer')!r}, not the configured OIDC_ISSUER")
    claims = dict(token.get("userinfo") or {})
    if not claims.get("sub"):
        abort(400, "The provider answered without an ID token; nothing was changed.")
    if (config.role_claim not in claims or config.name_claim not in claims) and metadata.get("userinfo_endpoint"):
        claims = _with_userinfo(client, token, claims)
    values = claim_values(claims, config.role_claim)
    grant = grant_for(config, values)
    if grant is None:
        return render_template(
            "sso_refused.html", provider=config.provider_name, claim=config.role_claim, values=values
        ), 403
    name = str(claims.get(config.name_claim) or "").strip()[:120]
    if not name:
        abort(403, f"{config.provider_name} sent no {config.name_claim!r} claim to name you by; nothing was changed.")
    try:
        user_id = sign_on(app_store(), config.issuer, str(claims["sub"]), name, grant)
    except LookupError:
        abort(
            409,
            f"A Plansheet user named {name} already exists and is not linked to this sign-on; nothing was "
            "changed. Ask an admin to rename one of them.",
        )
    with app_store().reading() as s:
        user = s.get(User, user_id)
    return sign_in(user, session.pop("sso_next", ""))


def _with_userinfo(client: Any, token: Mapping[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims with the userinfo endpoint's (providers often put groups only there).

    The answer counts only when it is about the same subject as the checked ID token.
    """
    try:
        extra = client.userinfo(token=token)
    except requests.RequestException as exc:
        current_app.logger.warning("single sign-on: the userinfo endpoint failed: %s", exc)
        abort(502, "The provider's userinfo endpoint could not be reached; try again in a moment")
    if extra.get("sub") != claims["sub"]:
        abort(400, "The provider's userinfo is about another subject than the ID token; nothing was changed.")
    return {**extra, **claims}
