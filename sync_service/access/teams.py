"""The teams: one per configured region and business unit, the unit every plan and every scope names."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from sheet_templates.schema import PlanSchema
from sync_service.platform.storage import Team


def team_id(region: str, business_unit: str) -> str:
    return f"{region}-{re.sub(r'[^A-Za-z0-9]+', '', business_unit)}".upper()


def sync_teams(session: Session, schema: PlanSchema) -> list[Team]:
    """One team per configured region and business unit (existing teams are kept)."""
    teams = []
    for region in schema.config.regions:
        for bu in schema.config.business_units:
            tid = team_id(region, bu)
            team = session.get(Team, tid) or Team(id=tid, region=region, business_unit=bu, name=f"{region} {bu}")
            session.add(team)
            teams.append(team)
    return teams
