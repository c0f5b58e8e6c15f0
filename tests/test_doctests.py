"""The docstring examples of odqa run as tests: the public face's and every module's that has
one (any file under src/odqa with a ``>>>`` line), so an example cannot go stale."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import odqa

PACKAGE = Path(odqa.__file__).parent


def modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_face_and_its_helpers_have_examples() -> None:
    assert {"odqa", "odqa.render", "odqa.read.factory", "odqa.retrieve.fusion"} <= set(
        modules_with_examples()
    )


@pytest.mark.parametrize("name", modules_with_examples())
def test_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no example that doctest found"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
