"""The documentation: the site builds without a warning, the configuration reference
covers every key, and user documentation speaks of the project, not of its history."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOK = DOCS / "hooks" / "config_reference.py"
#: words of a lab notebook, not of user documentation (history belongs in CHANGELOG.md)
HISTORY = re.compile(r"\bissue \d|\bsession\b|\b(first|second|third|fourth|fifth) pass\b"
                     r"|\bpass at\b|\bspec §", re.IGNORECASE)


def _hook():
    spec = importlib.util.spec_from_file_location("config_reference_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _user_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_every_config_key_has_a_description() -> None:
    keys = _hook().config_keys()
    assert len(keys) > 40
    missing = [k.key for k in keys if len(k.description.split()) < 3]
    assert not missing, ("config keys without a '#:' description in "
                         f"src/symstdp_genn/config.py: {', '.join(missing)}")


def test_configuration_reference_lists_every_key_and_preset() -> None:
    from symstdp_genn.config import list_presets

    hook = _hook()
    text = hook.config_markdown() + hook.presets_markdown()
    for key in hook.config_keys():
        assert f"| `{key.key}` |" in text
    for name in list_presets():
        assert f"| `{name}` |" in text
    page = (DOCS / "configuration.md").read_text()
    assert hook.CONFIG_MARKER in page and hook.PRESETS_MARKER in page


def test_user_docs_have_no_development_history() -> None:
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in _user_docs()
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if HISTORY.search(line)]
    assert not hits, "history wording in user documentation:\n" + "\n".join(hits)


def test_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 260
    commands = re.findall(r"```bash\n(.*?)\n```", text, re.DOTALL)
    assert commands[:2] == ["pip install -e . && python run.py --mode train",
                            'pip install -e ".[test]" && python -m pytest']


@pytest.mark.slow
def test_docs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: any warning (a broken link or anchor, a page missing from
    the nav, an API object that cannot be found) fails the build."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python",
                   "mkdocs_jupyter"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-d", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
