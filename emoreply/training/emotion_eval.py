"""Evaluate an emotion CNN on FER-style tensors and write its report, plots and model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..emotion_cnn import EMOTIONS, EmotionCNNForImageClassification, EmotionCNNImageProcessor
from .metrics import classification_report, plot_confusion_matrix

# Test-time augmentation variants reported for every model. The 2-pixel shift stays inside the
# training augmentation's ±10% (±2.4 px) shifts, so the shifted views are faces the model knows.
TTA_VIEWS: dict[str, dict[str, Any]] = {
    "no_tta": {"test_time_flip": False, "test_time_shift": 0},
    "tta_flip": {"test_time_flip": True, "test_time_shift": 0},
    "tta_ten_view": {"test_time_flip": True, "test_time_shift": 2},
}


def configured_view(config: Any) -> str:
    """The name in TTA_VIEWS of the views the model's config uses at inference."""
    mine = {"test_time_flip": config.test_time_flip, "test_time_shift": config.test_time_shift}
    return next((name for name, view in TTA_VIEWS.items() if view == mine), "configured")


@torch.inference_mode()
def predict(
    model: EmotionCNNForImageClassification,
    processor: EmotionCNNImageProcessor,
    images: torch.Tensor,  # (N, 1, 48, 48) uint8
    batch_size: int = 512,
    tta: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Class predictions (N,) in eval mode; ``tta`` (one of TTA_VIEWS) overrides the config's views."""
    model.eval()
    device = next(model.parameters()).device
    preds = [
        model(processor.normalize_faces(images[i : i + batch_size]).to(device), **(tta or {})).logits.argmax(-1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def test_report(
    model: EmotionCNNForImageClassification,
    processor: EmotionCNNImageProcessor,
    images: torch.Tensor,
    labels: torch.Tensor,
    output_dir: str | Path,
) -> dict[str, Any]:
    """Test metrics for every TTA view (and the model's own) -> eval_results.json + confusion_matrix.png.

    ``results["default_view"]`` names the view the model uses at inference: the headline figure.
    """
    output_dir = Path(output_dir)
    results: dict[str, Any] = {}
    views = {**TTA_VIEWS, "configured": {}}
    for name, tta in views.items():
        if name == "configured" and configured_view(model.config) != "configured":
            continue
        results[name] = classification_report(
            labels.tolist(), predict(model, processor, images, tta=tta).tolist(), EMOTIONS
        )
    results["default_view"] = configured_view(model.config)
    results["num_test_images"] = len(labels)
    (output_dir / "eval_results.json").write_text(json.dumps(results, indent=1) + "\n")
    best = results[results["default_view"]]
    plot_confusion_matrix(
        best["confusion_matrix"],
        EMOTIONS,
        output_dir / "confusion_matrix.png",
        f"FER-2013 test: accuracy {best['accuracy']:.1%}, macro-F1 {best['macro_f1']:.3f}",
    )
    return results
