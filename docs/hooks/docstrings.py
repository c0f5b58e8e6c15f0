"""A griffe extension for the API reference: odqa's docstrings are written for ``help()`` and
doctest (reST roles such as :func:`x`, ``>>>`` examples); shown as Markdown, the roles become
code and each run of doctest lines a Python code block."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`~?([^`]+)`")


def readable(text: str) -> str:
    """``text`` with roles as code spans and doctest runs fenced as ``pycon``."""
    text = ROLE.sub(lambda match: f"`{match.group(1).split('.')[-1]}`", text)
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        starts = line.lstrip().startswith(">>>")
        if starts and not inside:
            out.append("```pycon")
            inside = True
        elif inside and not line.strip():
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


class ReadableDocstrings(griffe.Extension):
    """Rewrites every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = readable(obj.docstring.value)
