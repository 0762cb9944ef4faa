"""Report plots, drawn with matplotlib's non-interactive Agg backend into PNG files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from core.fileio import atomic_write_bytes


def _save(figure: plt.Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def precision_recall_plot(path: Path, curves: Sequence[tuple[str, Sequence[float], Sequence[float], float]]) -> Path:
    """Precision against recall; ``curves`` are (name, recall, precision, AP)."""
    figure, axes = plt.subplots(figsize=(5, 4.2))
    for name, recall, precision, ap in curves:
        axes.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01), title="Precision-recall (IoU 0.5)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    return _save(figure, path)


def count_plot(path: Path, annotated: Sequence[int], detected: Sequence[int], r: float | None) -> Path:
    """Detected against annotated vertebrae per image, with the identity line."""
    figure, axes = plt.subplots(figsize=(4.5, 4.2))
    pairs: dict[tuple[int, int], int] = {}
    for a, d in zip(annotated, detected, strict=True):
        pairs[(a, d)] = pairs.get((a, d), 0) + 1
    xs, ys = zip(*pairs, strict=True) if pairs else ((), ())
    axes.scatter(xs, ys, s=[12 + 6 * n for n in pairs.values()], alpha=0.6)
    top = max([*annotated, *detected, 1]) + 1
    axes.plot([0, top], [0, top], color="grey", linewidth=1)
    title = "Vertebrae per image" + (f" (Pearson r {r:.3f})" if r is not None else "")
    axes.set(xlabel="annotated", ylabel="detected", title=title, xlim=(0, top), ylim=(0, top))
    axes.grid(alpha=0.3)
    return _save(figure, path)


def error_histogram_plot(path: Path, fp: Sequence[int], fn: Sequence[int]) -> Path:
    """How many images have 0, 1, 2 … false positives and false negatives."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
    for axes, values, name in ((left, fp, "false positives"), (right, fn, "false negatives")):
        top = max([*values, 0]) + 2
        axes.hist(values, bins=range(0, top), align="left", rwidth=0.8)
        axes.set(xlabel=f"{name} per image", title=name)
        axes.grid(alpha=0.3)
    left.set_ylabel("images")
    return _save(figure, path)


def roc_plot(path: Path, curves: Sequence[tuple[str, Sequence[float], Sequence[float], float | None]]) -> Path:
    """ROC curves; ``curves`` are (class, false-positive rate, true-positive rate, AUC)."""
    figure, axes = plt.subplots(figsize=(5, 4.6))
    for name, fpr, tpr, auc in curves:
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    axes.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle=":")
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title="ROC, one vs all")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def confusion_plot(path: Path, per_class: dict) -> Path:
    """One 2 x 2 confusion matrix per class (rows: truth, columns: call)."""
    figure, axes = plt.subplots(1, len(per_class), figsize=(2.1 * len(per_class), 2.6))
    for ax, (name, m) in zip(axes, per_class.items(), strict=True):
        grid = [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
        ax.imshow(grid, cmap="Blues")
        for r in range(2):
            for c in range(2):
                ax.text(c, r, str(grid[r][c]), ha="center", va="center", fontsize=9)
        ax.set(title=name, xticks=[0, 1], yticks=[0, 1], xticklabels=["no", "yes"], yticklabels=["no", "yes"])
        ax.set_xlabel("called", fontsize=8)
        ax.set_ylabel("truth", fontsize=8)
    figure.tight_layout()
    return _save(figure, path)
