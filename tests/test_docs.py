"""The documentation: the site builds without a warning, the configuration reference
covers every key, and user documentation speaks of the project, not of its history."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import types
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


# ------------------------------------------------------------------------------------------
# every public object the API reference renders has a docstring (mkdocstrings renders an
# undocumented one as a bare signature without a warning, so the strict build cannot see it)
# ------------------------------------------------------------------------------------------


def _api_page_modules() -> list[tuple[str, list[str] | None]]:
    """``(module, members or None for all)`` of every ``::: module`` block in docs/api.md."""
    blocks: list[tuple[str, list[str] | None]] = []
    members: list[str] | None = None
    for line in (DOCS / "api.md").read_text().splitlines():
        if match := re.match(r"^:::\s+([\w.]+)\s*$", line):
            members = None
            blocks.append((match.group(1), None))
        elif blocks and re.match(r"^\s+members:\s*$", line):
            members = []
            blocks[-1] = (blocks[-1][0], members)
        elif members is not None and (match := re.match(r"^\s+-\s+(\w+)\s*$", line)):
            members.append(match.group(1))
        elif line.strip() and not line.startswith(" "):
            members = None
    return blocks


def _has_docstring(obj: object) -> bool:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return False  # the signature dataclasses write in when there is no docstring
        return bool(doc.strip())
    return bool((getattr(obj, "__doc__", None) or "").strip())


def _public_objects(module: types.ModuleType) -> list[tuple[str, object]]:
    """The functions and classes a module defines (not imports) without a leading
    underscore, and those its ``__all__`` re-exports."""
    objects = {name: value for name, value in vars(module).items()
               if not name.startswith("_") and (inspect.isclass(value)
                                                or inspect.isfunction(value))
               and getattr(value, "__module__", None) == module.__name__}
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            objects.setdefault(name, value)
    return sorted(objects.items())


def _methods(cls: type) -> list[tuple[str, object]]:
    """A class's own public methods, class/static methods and properties."""
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            found.append((name, value))
    return found


def test_every_public_object_has_a_docstring() -> None:
    import symstdp_genn

    undocumented = [f"symstdp_genn.{name}" for name in symstdp_genn.__all__
                    if (inspect.isclass(obj := getattr(symstdp_genn, name))
                        or inspect.isfunction(obj)) and not _has_docstring(obj)]
    blocks = _api_page_modules()
    assert {"symstdp_genn.api", "symstdp_genn.config"} <= {name for name, _ in blocks}
    for module_name, members in blocks:
        module = importlib.import_module(module_name)
        if not _has_docstring(module):
            undocumented.append(module_name)
        for name, obj in _public_objects(module):
            if members is not None and name not in members:
                continue
            if not _has_docstring(obj):
                undocumented.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                undocumented += [f"{module_name}.{name}.{method}"
                                 for method, fn in _methods(obj) if not _has_docstring(fn)]
    assert not undocumented, ("public objects the API reference renders without a docstring "
                              "(say what each is for):\n" + "\n".join(undocumented))
