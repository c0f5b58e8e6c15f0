"""PNG figures of evaluations and tuning runs (matplotlib, Agg: no display needed).

``by_k``: a panel per metric, a line per retriever, the metric against k. ``history``: an
Optuna study's objective per trial and the best so far. matplotlib is the ``plot`` extra.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odqa.errors import OdqaError
from odqa.fs import write_bytes

PLOT_EXTRA = "pip install 'odqa[plot]'"
Curves = Mapping[str, Mapping[str, Mapping[int, float]]]
"""retriever -> metric -> k -> value."""


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; an :class:`OdqaError` naming the extra."""
    try:
        import matplotlib
    except ImportError as error:
        raise OdqaError(f"--plot needs matplotlib: {PLOT_EXTRA}") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_by_k(
    curves: Curves, path: str | Path, *, title: str, top: float = 1.0, unit: str = ""
) -> None:
    """One panel per metric (in the first retriever's order), value against k, a marked line
    per retriever; the y axis runs from 0 to ``top`` (1 for rates, 100 for percents)."""
    plt = require_matplotlib()
    if not curves:
        raise OdqaError("nothing to plot")
    metrics = list(next(iter(curves.values())))
    figure, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False, layout="constrained"
    )
    ks = sorted({k for lines in curves.values() for line in lines.values() for k in line})
    for axis, metric in zip(axes[0], metrics, strict=True):
        for retriever, lines in curves.items():
            points = sorted(lines.get(metric, {}).items())
            axis.plot([k for k, _ in points], [v for _, v in points], marker="o", label=retriever)
        axis.set_xscale("log")
        axis.set_xticks(ks, [str(k) for k in ks])
        axis.minorticks_off()
        axis.set_ylim(0, top * 1.04)  # room for markers on the top line
        axis.set_xlabel("k")
        axis.set_ylabel(f"{metric}{unit}")
        axis.set_title(f"{metric} at k")
        axis.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    figure.suptitle(title)
    _save(figure, path, plt)


def plot_history(values: Sequence[float], path: str | Path, objective: str) -> None:
    """An Optuna study: each trial's ``objective`` (trial 0: the defaults) and the best so far."""
    plt = require_matplotlib()
    best, so_far = [], float("-inf")
    for value in values:
        so_far = max(so_far, value)
        best.append(so_far)
    trials = list(range(len(values)))
    figure, axis = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    axis.scatter(trials, values, s=18, color="tab:blue", alpha=0.7, label="trial")
    axis.step(trials, best, where="post", color="tab:red", label="best so far")
    axis.axhline(values[0], color="gray", linestyle=":", label="defaults (trial 0)")
    low, high = min(values), max(values)
    margin = (high - low) * 0.1 or 0.01
    axis.set_ylim(low - margin, high + margin)
    axis.set_xlabel("trial")
    axis.set_ylabel(objective)
    axis.set_title(f"odqa tune: {objective} on the dev set, {len(values)} trials")
    axis.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncol=3, frameon=False)
    _save(figure, path, plt)


def _save(figure: Any, path: str | Path, plt: Any) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())
