"""Matplotlib figures of a run's history (headless: the Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def curves_figure(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch, train and validation, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes[:2], ("loss", "acc")):
        for split in ("train", "val", "test"):
            key = f"{split}/{metric}"
            if key in history[0]:
                ax.plot(epochs, [row[key] for row in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, [row["lr"] for row in history], marker="o", color="tab:purple")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("learning rate")
    axes[2].set_yscale("log")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
