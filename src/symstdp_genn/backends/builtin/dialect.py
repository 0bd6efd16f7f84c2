"""GeNN 5's code dialect → C: the names, literals and calls of a model's code strings.

GeNN's own code generator substitutes the names in a model's code strings (variables
become array elements or locals, parameters literals) and replaces its functions
(``addToPost``, ``injectCurrent``, ``gennrand_uniform``) by the backend's operations;
:mod:`.codegen` does the same through :func:`substitute`. Literals become the network's
precision (``1.0`` → ``1.0f``), as GeNN's ``scalar`` literals do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# Math functions are type-generic (<tgmath.h>), as GeNN 5's overloads are: ``fabs``
# of a float is ``fabsf``, of a double (a variable declared ``double``) ``fabs``.
# fmin/fmax map to inline equivalents (same results for all non-NaN and NaN inputs,
# up to the sign of zero, which C leaves open) that the compiler can vectorise.
FLOAT_FUNCTIONS = {"fmin": "gn_fmin", "fmax": "gn_fmax"}
#: C types of model variables (``Var``): ``scalar`` is the network's precision
C_TYPES = {"scalar": "scalar", "float": "float", "double": "double"}

_TOKEN = re.compile(
    r"(?P<num>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|\d+[eE][+-]?\d+[fF]?)"
    r"|(?P<id>[A-Za-z_]\w*)")


def c_type(var_type: str, where: str) -> str:
    """The C type of a model variable declared ``var_type`` (GeNN's type names)."""
    if var_type not in C_TYPES:
        raise ValueError(f"{where}: variable type '{var_type}' is not supported by the builtin "
                         f"backend (use one of {', '.join(C_TYPES)})")
    return C_TYPES[var_type]


def literal(value: float, precision: str = "float") -> str:
    text = repr(float(value))
    if "inf" in text or "nan" in text:
        raise ValueError(f"parameter value {value} cannot be compiled")
    if "." not in text and "e" not in text:
        text += ".0"
    return f"({text}f)" if precision == "float" else f"({text})"


def replace_calls(code: str, name: str, render: Callable[[str], str]) -> str:
    """Replace ``name(args)`` (balanced parentheses) by ``render(args)``."""
    pattern = re.compile(rf"\b{name}\s*\(")
    while True:
        match = pattern.search(code)
        if not match:
            return code
        depth, pos = 1, match.end()
        while depth:
            if pos >= len(code):
                raise ValueError(f"unbalanced parentheses after {name} in model code")
            depth += {"(": 1, ")": -1}.get(code[pos], 0)
            pos += 1
        code = code[:match.start()] + render(code[match.end():pos - 1]) + code[pos:]


def substitute(code: str, names: Mapping[str, str], precision: str = "float",
               calls: Mapping[str, Callable[[str], str]] | None = None) -> str:
    """Rewrite GeNN-dialect ``code``: names → C expressions, literals → ``scalar``."""
    def token(match: re.Match[str]) -> str:
        num, ident = match.group("num"), match.group("id")
        if num is not None:
            if precision == "float" and num[-1] not in "fF":
                return num + "f"
            return num
        if ident in names:
            return names[ident]
        if precision == "float" and ident in FLOAT_FUNCTIONS:
            return FLOAT_FUNCTIONS[ident]
        return ident

    out = _TOKEN.sub(token, code)
    for name, render in (calls or {}).items():
        out = replace_calls(out, name, lambda args, r=render: r(args))
    return out
