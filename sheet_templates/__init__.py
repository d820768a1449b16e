"""The shape of a plan, defined once: configuration, fiscal calendar, schema and workbook builders."""

from sheet_templates.config import OrgConfig, load_config
from sheet_templates.errors import ConfigError, PlansheetError
from sheet_templates.schema import PlanSchema, build_schema

__all__ = ["ConfigError", "OrgConfig", "PlanSchema", "PlansheetError", "build_schema", "load_config"]
