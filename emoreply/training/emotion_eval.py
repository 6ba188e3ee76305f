"""Evaluate an emotion CNN on FER-style tensors and write its report, plots and model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..emotion_cnn import EMOTIONS, EmotionCNNForImageClassification, EmotionCNNImageProcessor
from .metrics import classification_report, plot_confusion_matrix


@torch.inference_mode()
def predict(
    model: EmotionCNNForImageClassification,
    processor: EmotionCNNImageProcessor,
    images: torch.Tensor,  # (N, 1, 48, 48) uint8
    batch_size: int = 512,
    test_time_flip: bool | None = None,
) -> torch.Tensor:
    """Class predictions (N,) in eval mode; ``test_time_flip`` overrides the config's setting."""
    model.eval()
    saved = model.config.test_time_flip
    if test_time_flip is not None:
        model.config.test_time_flip = test_time_flip
    device = next(model.parameters()).device
    try:
        preds = [
            model(processor.normalize_faces(images[i : i + batch_size]).to(device)).logits.argmax(-1).cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.config.test_time_flip = saved
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def test_report(
    model: EmotionCNNForImageClassification,
    processor: EmotionCNNImageProcessor,
    images: torch.Tensor,
    labels: torch.Tensor,
    output_dir: str | Path,
) -> dict[str, Any]:
    """Test metrics with and without mirror TTA -> eval_results.json + confusion_matrix.png."""
    output_dir = Path(output_dir)
    results = {}
    for name, flip in (("tta_flip", True), ("no_tta", False)):
        results[name] = classification_report(
            labels.tolist(), predict(model, processor, images, test_time_flip=flip).tolist(), EMOTIONS
        )
    results["num_test_images"] = len(labels)
    (output_dir / "eval_results.json").write_text(json.dumps(results, indent=1) + "\n")
    best = results["tta_flip"]
    plot_confusion_matrix(
        best["confusion_matrix"],
        EMOTIONS,
        output_dir / "confusion_matrix.png",
        f"FER-2013 test: accuracy {best['accuracy']:.1%}, macro-F1 {best['macro_f1']:.3f}",
    )
    return results
