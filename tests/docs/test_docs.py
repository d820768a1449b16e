"""The documentation stays true: every rule and configuration section is documented."""

from __future__ import annotations

import re
from pathlib import Path

from addin.issues import Rule
from sheet_templates.config import default_config_path

ROOT = Path(__file__).resolve().parents[2]


def test_every_rule_is_documented():
    text = (ROOT / "docs" / "plan-rules.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:file|template|column|cell|line|plan)\.[a-z_0-9]+)`", text))
    assert documented == {str(r) for r in Rule}


def test_every_config_section_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = default_config_path().read_text(encoding="utf-8")
    sections = {s.split(".")[0] for s in re.findall(r"^\[\[?([a-z_.A-Z0-9]+)\]?\]", sample, flags=re.M)}
    for section in sections:
        assert f"[{section}" in readme or f"[[{section}]]" in readme, section


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_service_setting_is_in_the_readme():
    from sync_service.settings import SETTINGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in readme, setting.name
