"""libgomp's worker wait is set before torch loads, and never over the user's choice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from odqa.threads import SPIN_ROUNDS, set_worker_wait

SHOW = "import os; print(os.environ.get('GOMP_SPINCOUNT'))"


def run_python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_odqa_asks_for_brief_spins_before_torch_loads() -> None:
    assert run_python(f"import odqa; {SHOW}") == SPIN_ROUNDS


def test_the_odqa_command_sets_it_too() -> None:
    assert run_python(f"import odqa.cli; {SHOW}") == SPIN_ROUNDS


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "None")],
)
def test_a_setting_the_user_made_is_kept(env: dict[str, str], expected: str) -> None:
    assert run_python(f"import odqa; {SHOW}", **env) == expected


def test_nothing_is_set_once_torch_is_loaded() -> None:
    """libgomp has read its environment by then: setting it would only mislead."""
    assert run_python(f"import torch, odqa; {SHOW}") == "None"


def test_set_worker_wait_writes_only_an_empty_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    environ: dict[str, str] = {}
    assert set_worker_wait(environ) and environ == {"GOMP_SPINCOUNT": SPIN_ROUNDS}
    chosen = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert not set_worker_wait(chosen) and chosen == {"OMP_WAIT_POLICY": "PASSIVE"}
