"""MkDocs hook: the configuration reference, generated from the schema at every build.

``docs/configuration.md`` holds two markers; this hook replaces them with tables built
from :mod:`symstdp_genn.config` itself (each dataclass field's type, default, allowed
values and its ``#:`` comment) and from the preset files, so the reference cannot fall
behind the code. ``tests/test_docs.py`` imports :func:`config_keys` and fails when a key
has no description.

It also drops nav entries whose page does not exist yet (the tutorial notebook), so the
site builds before and after it lands, and renders the Sphinx roles some docstrings use
(``:class:`~pkg.Name` ``) as plain code in the API reference.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

CONFIG_MARKER = "<!-- config-reference -->"
PRESETS_MARKER = "<!-- presets-table -->"
#: nav entries that may not exist yet; dropped from the nav while their file is missing
OPTIONAL_PAGES = ("tutorial.ipynb",)


class Key(typing.NamedTuple):
    """One configuration key as the reference shows it."""

    key: str  # dotted, e.g. network.theta_plus
    type: str
    default: Any
    allowed: str
    description: str


def _field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment lines right above each field of ``cls``, joined."""
    source_lines, _ = inspect.getsourcelines(sys.modules[cls.__module__])
    tree = ast.parse("".join(source_lines))
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == cls.__name__):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                comment: list[str] = []
                i = stmt.lineno - 2  # the line above, 0-based
                while i >= 0 and source_lines[i].strip().startswith("#:"):
                    comment.insert(0, source_lines[i].strip()[2:].strip())
                    i -= 1
                out[stmt.target.id] = " ".join(comment)
    return out


def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args and len(args) < len(typing.get_args(tp)):
        return f"{_type_name(args[0])} or null"
    return getattr(tp, "__name__", str(tp))


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _allowed(meta: typing.Mapping[str, Any]) -> str:
    if "choices" in meta:
        return ", ".join(f"`{c}`" for c in meta["choices"])
    if "range" in meta:
        lo, hi, lo_open = meta["range"]
        lo_s = "−∞" if lo is None else _number(lo)
        hi_s = "∞" if hi is None else _number(hi)
        return f"{'(' if lo_open else '['}{lo_s}, {hi_s}]"
    return ""


def config_keys() -> list[Key]:
    """Every leaf key of :class:`symstdp_genn.config.Config`, in schema order."""
    from symstdp_genn.config import Config

    keys: list[Key] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        comments = _field_comments(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
                continue
            keys.append(Key(f"{prefix}{f.name}", _type_name(tp), getattr(defaults, f.name),
                            _allowed(f.metadata), comments.get(f.name, "")))

    walk(Config, "")
    return keys


def _cell(text: str) -> str:
    """Markdown for a table cell: reST double backticks to Markdown code, pipes escaped."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def config_markdown() -> str:
    from symstdp_genn.config import Config

    sections: dict[str, list[Key]] = {}
    for key in config_keys():
        section = key.key.split(".")[0] if "." in key.key else ""
        sections.setdefault(section, []).append(key)
    docs = {f.name: inspect.getdoc(f.type) for f in dataclasses.fields(Config)
            if isinstance(f.type, type) and dataclasses.is_dataclass(f.type)}
    hints = typing.get_type_hints(Config)
    out: list[str] = []
    for section, keys in sections.items():
        title = f"`{section}`" if section else "Top level"
        out.append(f"### {title}\n")
        doc = inspect.getdoc(hints[section]) if section else docs.get(section)
        if doc:
            out.append(_cell(doc.splitlines()[0]) + "\n")
        out.append("| key | type | default | allowed | meaning |")
        out.append("| --- | --- | --- | --- | --- |")
        for k in keys:
            out.append(f"| `{k.key}` | {k.type} | {_default(k.default)} | {_cell(k.allowed)} "
                       f"| {_cell(k.description)} |")
        out.append("")
    return "\n".join(out)


def presets_markdown() -> str:
    """The network presets as one table of the values each sets (the rest are the
    defaults), then the presets built on another one, with what they change."""
    from symstdp_genn.config import PRESET_DIR, list_presets, read_yaml

    def flat(data: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    own: dict[str, dict[str, Any]] = {}
    derived: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in list_presets():
        data = read_yaml(PRESET_DIR / f"{name}.yaml", "preset") or {}
        base = data.pop("preset", None)
        data.pop("name", None)
        if base:
            derived[name] = (str(base), flat(data))
        else:
            own[name] = flat(data)
    columns = list(dict.fromkeys(k for values in own.values() for k in values))
    rows = ["| preset | " + " | ".join(f"`{c.removeprefix('network.')}`" for c in columns) + " |",
            "| --- |" + " --- |" * len(columns)]
    for name, values in own.items():
        cells = [_default(values[c]).strip("`") if c in values else "" for c in columns]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    rows += ["", "| preset | based on | changes |", "| --- | --- | --- |"]
    for name, (base, values) in derived.items():
        changes = ", ".join(f"`{k}: {_default(v).strip('`')}`" for k, v in values.items())
        rows.append(f"| `{name}` | `{base}` | {changes} |")
    return "\n".join(rows) + "\n"


# --- MkDocs hook events ------------------------------------------------------------


def on_config(config: Any, **_: Any) -> Any:
    docs_dir = Path(config["docs_dir"])

    def keep(item: Any) -> bool:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                item[title] = [i for i in value if keep(i)]
                return bool(item[title])
            return keep(value)
        if isinstance(item, str) and item in OPTIONAL_PAGES:
            return (docs_dir / item).is_file()
        return True

    if config.get("nav"):
        config["nav"] = [i for i in config["nav"] if keep(i)]
    return config


_SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>~?([^<]*)</code>")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).split("<code>", 1)[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _SPHINX_ROLE.sub(_role, html)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_markdown())
    if PRESETS_MARKER in markdown:
        markdown = markdown.replace(PRESETS_MARKER, presets_markdown())
    return markdown
