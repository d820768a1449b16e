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
    from sync_service.platform.settings import SETTINGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in readme, setting.name


def test_performance_docs_name_every_rule_measure_and_preset():
    """docs/performance.md lists every refusal rule of a results import, every measure and every preset."""
    from sync_service.master.performance import MEASURES
    from sync_service.results import outcomes

    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    source = Path(outcomes.__file__).read_text(encoding="utf-8")
    rules = set(re.findall(r'problem\("?\w+"?, i, "([a-z_]+)"', source))
    rules |= set(re.findall(r'"rule": "outcomes\.([a-z_]+)"', source))
    assert rules, f"no rules found in {outcomes.__file__}"
    documented = set(re.findall(r"`outcomes\.([a-z_]+)`", text))
    assert documented == rules
    for measure in MEASURES:
        assert f"`{measure.name}`" in text, measure.name
    for preset in outcomes.PRESETS:
        assert f"(`{preset}`)" in text, preset


def test_each_documented_sample_header_is_read_by_its_preset():
    """The sample header shown for each preset is detected as that preset, with a key, a month and its results."""
    from sync_service.results import outcomes

    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    samples = re.findall(r"\(`([a-z]+)`\)[^`]*?```text\n([^\n]+)\n```", text, flags=re.S)
    assert {name for name, _ in samples} == set(outcomes.PRESETS)
    for name, header in samples:
        cells = header.split(",")
        assert outcomes.detect_preset([cells]) == name, name
        columns = outcomes.columns_of(cells, name, None)
        assert "month" in columns and set(outcomes.KEYS) & columns.keys(), name
        named = {h.strip() for h in cells} - {"Currency", "Campaign Currency"}
        assert len(columns) == len(cells), (name, sorted(named))


def test_imports_docs_name_every_preset_its_headers_words_and_sample_and_every_field():
    """docs/imports.md documents each preset (its headers, words and sample, which its test reads) and each field."""
    import sync_service.app  # noqa: F401  (every reader declares its fields on import)
    from sync_service.platform import presets

    text = (ROOT / "docs" / "imports.md").read_text(encoding="utf-8")
    for kind in presets.KINDS:
        for preset in presets.PRESETS[kind]:
            section = text.split(f"#### `{preset.name}`", 1)
            assert len(section) == 2, f"docs/imports.md has no section for {preset.name}"
            body = section[1].split("#### ", 1)[0]
            for field, headers in preset.headers.items():
                assert f"| `{field}` | {', '.join(repr(h) for h in headers)} |" in body, (preset.name, field)
            for words in preset.values.values():
                for word, meaning in words.items():
                    assert f"{word!r} → {meaning}" in body, (preset.name, word)
            assert (ROOT / "docs" / "samples" / f"{preset.name}.csv").is_file(), preset.name
            assert f"samples/{preset.name}.csv" in body
        for field in presets.FIELDS[kind]:
            if kind != presets.RESULTS:
                assert f"| `{field}` |" in text, (kind, field)
