"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from typing import Any

MODEL_COLORS = {"tuned": "#1f77b4", "base": "#7f7f7f", "champion": "#ff7f0e"}


def _figure(width: float = 6.0, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    # A Figure not attached to pyplot: nothing global to close, safe in a long-lived process.
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def loss_curve_png(history: list[tuple[int, float]], title: str = "Training loss") -> bytes:
    """Loss against step, from the MLflow metric history of the training run."""
    figure, axes = _figure()
    steps = [step for step, _ in history]
    axes.plot(steps, [value for _, value in history], marker="o", markersize=3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return _png(figure)


def metric_bars_png(values: dict[str, dict[str, float | None]], title: str) -> bytes:
    """Grouped bars: one group per metric, one bar per model. `values`: metric -> model ->
    value (None: not measured)."""
    figure, axes = _figure(width=max(6.0, 1.6 * len(values)))
    labels = sorted(
        {label for by_model in values.values() for label in by_model},
        key=lambda label: list(MODEL_COLORS).index(label) if label in MODEL_COLORS else 99,
    )
    width = 0.8 / max(len(labels), 1)
    for offset, label in enumerate(labels):
        xs, heights = [], []
        for position, by_model in enumerate(values.values()):
            value = by_model.get(label)
            if value is not None:
                xs.append(position + (offset - (len(labels) - 1) / 2) * width)
                heights.append(value)
        axes.bar(xs, heights, width=width, label=label, color=MODEL_COLORS.get(label))
    axes.set_xticks(range(len(values)), list(values))
    axes.set_title(title)
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def delta_intervals_png(deltas: dict[str, dict[str, float]], title: str) -> bytes:
    """Each A/B delta as a point with its bootstrap interval, on its own scale (BLEU moves in
    points, ROUGE-L in fractions); the zero line marks no change. Green: tuned is better with
    the interval clear of zero (higher scores, lower perplexity); red: worse; grey: no telling."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 0.8 * len(deltas) + 0.8), dpi=100, layout="constrained")
    rows = figure.subplots(max(len(deltas), 1), 1, squeeze=False)[:, 0]
    for axes, (name, delta) in zip(rows, deltas.items(), strict=False):
        # Green when tuned is better beyond doubt: a higher score, or a lower perplexity.
        above, below = delta["low"] > 0, delta["high"] < 0
        better, worse = (below, above) if "perplexity" in name else (above, below)
        color = "#2ca02c" if better else "#d62728" if worse else "#7f7f7f"
        axes.errorbar(
            [delta["delta"]],
            [0],
            xerr=[[delta["delta"] - delta["low"]], [delta["high"] - delta["delta"]]],
            fmt="o",
            color=color,
            capsize=4,
        )
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set_yticks([0], [name])
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    return _png(figure)
