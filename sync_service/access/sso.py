"""Single sign-on's rules: what the organisation's OpenID provider settings mean, and who a signed-on person is.

A person is matched by issuer and subject, and their role and teams are mapped again from the role
claim at every login, so leaving a group at the provider takes its rights away at the next one
(each change in the audit log). A person whose claim maps to nothing is refused, and nothing is
created. The sign-on flow itself (Authlib, the callback) is the dashboard's: `sync_service.web.sso`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from sheet_templates.errors import ConfigError
from sheet_templates.schema import PlanSchema
from sync_service.access.teams import team_id
from sync_service.platform.storage import AuditEvent, Role, Store, Team, User, UserIdentity, utcnow

PRECEDENCE = (Role.FINANCE, Role.MARKETER, Role.ADMIN)


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True, slots=True)
class Grant:
    """What one value of the role claim gives: a role, and for a marketer the teams they plan."""

    role: Role
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SsoConfig:
    issuer: str
    provider_name: str
    role_claim: str
    name_claim: str
    groups: Mapping[str, Grant]


def read_config(config: Mapping[str, Any], schema: PlanSchema) -> SsoConfig | None:
    """The single sign-on settings, checked (ConfigError naming the setting); None when OIDC_ISSUER is not set."""
    issuer = str(config.get("OIDC_ISSUER") or "").strip().rstrip("/")
    if not issuer:
        return None
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"OIDC_ISSUER is {issuer!r}; write the provider's issuer URL, https://login.acme.com/...")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError(f"OIDC_ISSUER is {issuer!r}; an issuer must use https (plain http only on this machine)")
    for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if not str(config.get(name) or "").strip():
            raise ConfigError(f"{name} is not set; single sign-on (OIDC_ISSUER) needs the client registered for it")
    if "openid" not in str(config.get("OIDC_SCOPES") or "").split():
        raise ConfigError(f"OIDC_SCOPES is {config.get('OIDC_SCOPES')!r}; it must include 'openid'")
    for name in ("OIDC_ROLE_CLAIM", "OIDC_NAME_CLAIM"):
        if not str(config.get(name) or "").strip():
            raise ConfigError(f"{name} is empty; name the claim to read")
    return SsoConfig(
        issuer=issuer,
        provider_name=str(config.get("OIDC_PROVIDER_NAME") or "single sign-on"),
        role_claim=str(config["OIDC_ROLE_CLAIM"]).strip(),
        name_claim=str(config["OIDC_NAME_CLAIM"]).strip(),
        groups=parse_groups(config.get("OIDC_GROUPS"), schema),
    )


def parse_groups(raw: Any, schema: PlanSchema) -> dict[str, Grant]:
    """OIDC_GROUPS (a mapping, or its JSON text) as grants, every team and region checked against the organisation."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"OIDC_GROUPS is not valid JSON ({exc})") from None
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            'OIDC_GROUPS maps no claim value to a role, so nobody could sign in; write e.g. {"plansheet-finance": '
            '{"role": "finance"}, "emea-marketing": {"role": "marketer", "regions": ["EMEA"]}}'
        )
    regions = schema.config.regions
    teams_of = {r: {team_id(r, bu) for bu in schema.config.business_units} for r in regions}
    all_teams = set().union(*teams_of.values())
    grants = {}
    for value, spec in raw.items():
        where = f"OIDC_GROUPS[{value!r}]"
        if not isinstance(spec, Mapping) or set(spec) - {"role", "teams", "regions"}:
            raise ConfigError(f"{where} must be an object with 'role' and, for a marketer, 'teams' and/or 'regions'")
        try:
            role = Role(str(spec.get("role", "")).strip().lower())
        except ValueError:
            raise ConfigError(
                f"{where}.role is {spec.get('role')!r}; use one of {', '.join(r.value for r in Role)}"
            ) from None
        named_teams, named_regions = _names(spec, "teams", where), _names(spec, "regions", where)
        if role != Role.MARKETER and (named_teams or named_regions):
            raise ConfigError(f"{where} gives {role.value} teams or regions; only marketers have them")
        if role == Role.MARKETER and not (named_teams or named_regions):
            raise ConfigError(f"{where} makes marketers of no team; give 'teams' or 'regions'")
        for region in named_regions:
            if region not in teams_of:
                raise ConfigError(f"{where}.regions names {region!r}; the regions are {', '.join(regions)}")
        for team in named_teams:
            if team not in all_teams:
                raise ConfigError(f"{where}.teams names {team!r}; the teams are {', '.join(sorted(all_teams))}")
        teams = frozenset(named_teams).union(*(teams_of[r] for r in named_regions))
        grants[str(value)] = Grant(role, teams)
    return grants


def _names(spec: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of names")
    return value


def claim_values(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The values of `claim`: a list of groups or roles, or one text value; [] when it is missing."""
    value = claims.get(claim)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]


def grant_for(config: SsoConfig, values: Sequence[str]) -> Grant | None:
    """The role and teams the claim's `values` give together (the highest role; every team); None for nothing."""
    grants = [config.groups[v] for v in values if v in config.groups]
    if not grants:
        return None
    role = next(r for r in PRECEDENCE if any(g.role == r for g in grants))
    return Grant(role, frozenset().union(*(g.teams for g in grants)))


def sign_on(store: Store, issuer: str, subject: str, name: str, grant: Grant) -> int:
    """The user of this identity, created or re-mapped to `grant` in one transaction with its audit; its id.

    Raises LookupError when a new identity's name is already another user's: matching it by name
    would let whoever controls that name at the provider take over the account.
    """
    with store.transaction() as s:
        identity = s.get(UserIdentity, (issuer, subject))
        teams = [s.get(Team, t) for t in sorted(grant.teams)]
        if any(t is None for t in teams):
            raise RuntimeError("the organisation's teams are not in the database; run plansheet init")
        if identity is None:
            if s.scalar(select(User).where(User.name == name)) is not None:
                raise LookupError(name)
            user = User(name=name, role=grant.role.value, teams=teams)
            s.add(user)
            s.flush()
            s.add(UserIdentity(issuer=issuer, subject=subject, user_id=user.id))
            s.add(_audit(user, "user.sso_create", {"role": user.role, "teams": sorted(grant.teams)}, issuer, subject))
            return user.id
        user = identity.user
        identity.last_login_at = utcnow()
        before = {"role": user.role, "teams": sorted(t.id for t in user.teams)}
        after = {"role": grant.role.value, "teams": sorted(grant.teams)}
        if before != after:
            user.role = grant.role.value
            user.teams = teams
            s.add(_audit(user, "user.sso_update", {"before": before, "after": after}, issuer, subject))
        return user.id


def _audit(user: User, action: str, detail: dict[str, Any], issuer: str, subject: str) -> AuditEvent:
    return AuditEvent(
        user_id=user.id, action=action, target=f"user:{user.name}", detail={**detail, "issuer": issuer, "sub": subject}
    )
