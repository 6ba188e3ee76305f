"""Classification metrics (scikit-learn's, as the dict eval results keep) and the training plots (no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class recall/precision/F1 and the confusion matrix (rows: truth), from scikit-learn.

    ``y_true`` and ``y_pred`` are indices into ``labels``; every label counts in the macro average, a class
    never predicted (or never present) scoring 0.
    """
    from sklearn import metrics

    indices = list(range(len(labels)))
    report = metrics.classification_report(
        y_true, y_pred, labels=indices, target_names=list(labels), output_dict=True, zero_division=0
    )
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "per_class": {
            name: {
                "recall": float(report[name]["recall"]),
                "precision": float(report[name]["precision"]),
                "f1": float(report[name]["f1-score"]),
                "support": int(report[name]["support"]),
            }
            for name in labels
        },
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: training machines have no display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix (scikit-learn's display) with each cell's count, as a PNG."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    display = ConfusionMatrixDisplay(norm, display_labels=list(labels)).plot(
        ax=ax, cmap="Blues", colorbar=False, im_kw={"vmin": 0, "vmax": 1}, text_kw={"fontsize": 7}
    )
    for (i, j), text in np.ndenumerate(display.text_):  # the share and, below it, the count
        text.set_text(f"{norm[i, j]:.2f}\n({int(cm[i, j])})")
        text.set_color("white" if norm[i, j] > 0.5 else "black")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(display.im_, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(history: list[dict], keys: Sequence[Sequence[str]], path: str | Path, title: str) -> None:
    """One panel per group of history keys (e.g. [["train_loss", "val_loss"], ["val_accuracy"]])."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, group in zip(axes[0], keys, strict=True):
        for key in group:
            ax.plot(epochs, [h.get(key) for h in history], marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
