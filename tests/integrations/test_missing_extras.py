"""Importing an adapter whose framework is not installed names the extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT

BLOCK = "import sys; sys.modules[{module!r}] = None  # what an absent package looks like\n"


@pytest.mark.parametrize(
    ("adapter", "module", "package", "extra"),
    [
        ("langchain", "langchain_core", "langchain-core", "langchain"),
        ("llama_index", "llama_index", "llama-index-core", "llama-index"),
    ],
)
def test_a_missing_framework_names_its_extra(
    adapter: str, module: str, package: str, extra: str
) -> None:
    code = BLOCK.format(module=module) + (
        "from odqa.integrations.common import MissingExtraError\n"
        "try:\n"
        f"    import odqa.integrations.{adapter}\n"
        "except MissingExtraError as error:\n"
        "    assert isinstance(error, ImportError)\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"odqa.integrations.{adapter} needs {package}, which is not "
        f"installed: pip install 'odqa[{extra}]'"
    )
