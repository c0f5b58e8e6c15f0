"""The Optuna study: a seeded TPE sampler over a :class:`~odqa.tune.space.Space`.

Trial 0 is odqa's default settings, so the best found is never worse on the dev set. Optuna's
own logging is kept to warnings; a progress bar shows the trials.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from odqa.errors import OdqaError
from odqa.tune.space import Candidate, Space

TUNE_EXTRA = "pip install 'odqa[tune]'"


@dataclass(frozen=True)
class StudyResult:
    """What a study found: the best candidate and its score, the default's score, every
    trial's score in order, and the time the trials took (the first one searches; the
    others replay)."""

    best: Candidate
    best_value: float
    best_params: dict[str, Any]
    default_value: float
    values: list[float]
    first_trial_s: float
    trial_s: float


def optuna_module() -> Any:
    """Optuna, quiet; an :class:`OdqaError` naming the extra when it is not installed."""
    try:
        import optuna
    except ImportError as error:
        raise OdqaError(f"odqa tune needs Optuna: {TUNE_EXTRA}") from error
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def run_study(
    space: Space,
    score: Callable[[Candidate], float],
    *,
    trials: int,
    seed: int = 0,
    default_reader_k: int | None = None,
    show_progress: bool = False,
) -> StudyResult:
    """Maximise ``score`` over ``space`` in ``trials`` trials (the first: the defaults)."""
    if trials < 1:
        raise OdqaError(f"--trials must be at least 1, got {trials}")
    optuna = optuna_module()
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(space.default_params(default_reader_k))
    seconds: list[float] = []

    def objective(trial: Any) -> float:
        started = time.perf_counter()
        value = score(space.suggest(trial))
        seconds.append(time.perf_counter() - started)
        return value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=trials, show_progress_bar=show_progress)
    best = study.best_trial
    return StudyResult(
        best=space.suggest(optuna.trial.FixedTrial(best.params)),
        best_value=float(best.value),
        best_params=dict(best.params),
        default_value=float(study.trials[0].value),
        values=[float(trial.value) for trial in study.trials],
        first_trial_s=seconds[0],
        trial_s=statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0],
    )
