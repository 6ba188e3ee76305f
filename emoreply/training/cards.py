"""Model cards, written by the training scripts from what the run measured."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..emotion_cnn import DISPLAY_NAMES, EMOTIONS, EmotionCNNConfig, EmotionCNNForImageClassification


def training_notes(folder: str | Path) -> str:
    """``training_notes.md`` of a run folder (what a person should know about the run) as a card paragraph."""
    notes = Path(folder) / "training_notes.md"
    return f"\n\n{notes.read_text().strip()}" if notes.exists() else ""


EMOTION_CARD = """---
license: mit
library_name: transformers
pipeline_tag: image-classification
tags:
- facial-expression-recognition
- fer2013
- emoreply
datasets:
- fer2013
metrics:
- accuracy
- f1
model-index:
- name: {name}
  results:
  - task:
      type: image-classification
      name: Facial expression recognition
    dataset:
      type: fer2013
      name: FER-2013 (PublicTest split)
      split: test
    metrics:
    - type: accuracy
      value: {acc:.4f}
      name: Accuracy ({view_label})
    - type: accuracy
      value: {acc_plain:.4f}
      name: Accuracy (no TTA)
    - type: f1
      value: {f1:.4f}
      name: Macro F1 ({view_label})
---

# {name}: emotion reader of emoreply

A compact CNN ({params:,} parameters) that reads one of seven emotions from a 48x48 grayscale face:
{emotions}. It is the first half of [emoreply](https://github.com/emoreply/emoreply), which drafts
a reply to a text message in the emotion on the reader's face, after *My Reaction Says it All*
(Garrard, O'Donnell & Taskovski).

## Results on the FER-2013 test split ({n_test:,} images, `PublicTest`)

| | accuracy | macro-F1 |
|---|---|---|
{view_rows}
| the paper's final CNN (same architecture) | 66% | — |
| 2013 challenge winner (private test split) | 71.2% | — |

Per-class results ({view_label}, the model's inference setting):

| emotion | recall | precision | F1 | test images |
|---|---|---|---|---|
{per_class}

![confusion matrix](confusion_matrix.png)
![training curves](training_curves.png)

Best validation accuracy {best_val:.2%} at epoch {best_epoch} of {epochs_run}; mean training
throughput {ips:.0f} images/s ({epoch_s:.0f} s per epoch) on this run's hardware.

## Intended use

Reading the *expressed* emotion of a single, roughly frontal face to pick the tone of a drafted
reply that a person then reviews. Not for judging anyone's inner state, mental health, honesty,
or suitability for anything; not for surveillance or decisions about people.

## Model

Three blocks of (3x3 conv, BatchNorm, LeakyReLU) x2, 2x2 max-pool and dropout (20/40/80 channels),
then FC 2880 -> 256 -> 7 (the paper's Table 2). In eval mode it averages the logits of several
views of the face in one batched pass: its mirror image (`test_time_flip`) and, when
`test_time_shift` is set, copies shifted by that many pixels up, down, left and right (with the
mirror, ten views). This model's setting: {view_label}; set both to false/0 for single-view inference.
The image processor finds the largest face with OpenCV's Haar cascade (offline, no download),
crops it with a {margin:.0%} margin, converts to 48x48 grayscale and normalises. A frame with no
face raises `NoFaceError` (or, with `return_face_boxes=True`, is reported as `face_found=False`).

## Training

- Data: FER-2013 `Training` split (28,709 images), {val_pct:.0%} of each class held out for
  validation, early stopping and every choice; the test split is only scored, at the end of a run.
- Loss: class-weighted cross-entropy, weights `{weighting}` of class frequency, normalised{focal}.
- Optimiser: {optimizer}, lr {lr:g}, weight decay {wd:g}, batch {bs}, {schedule}, up to
  {max_epochs} epochs, early stopping patience {patience}.
- Augmentation: horizontal flip, rotation ±12°, scale ±12%, shift ±10%, random erasing
  (strength {aug:g}); dropout {conv_do:g} (conv blocks) / {fc_do:g} (FC).{warm_start}{averaged}
- Full arguments: `training_args.json`.{notes}

## Limitations and biases

FER-2013 was gathered by image search in 2013: posed and stock-photo faces, mostly frontal, with
label noise (the paper and others find many *surprise*/*fear*/*sad* labels ambiguous). Its
demographics are not documented and skew towards young, lighter-skinned adults; accuracy on other
groups, children, profile views, poor lighting, glasses or masks is unmeasured and likely lower.
*Disgust* has only 436 training images; its recall is the least reliable. Expressions are not
feelings: people mask, exaggerate and differ across cultures. The licence of FER-2013 is that of
the 2013 ICML workshop challenge (research use).

## How to use

With emoreply installed:

```python
from emoreply import EmotionReader
reader = EmotionReader.from_pretrained("{repo}")
result = reader.read("photo.jpg")   # face box, probabilities per emotion, top emotion
```

Without emoreply (the model's code ships with it):

```python
from transformers import pipeline
classify = pipeline("image-classification", model="{repo}", trust_remote_code=True)
classify("photo.jpg", top_k=7)
```
"""


VIEW_LABELS = {
    "no_tta": "no test-time augmentation",
    "tta_flip": "mirror test-time augmentation (2 views)",
    "tta_ten_view": "ten-view test-time augmentation (mirror x 2-pixel shifts)",
    "configured": "the configured test-time augmentation",
}


def weight_average_line(averaged: dict[str, Any] | None) -> str:
    """The card's line on stochastic weight averaging (``TrainerState.averaged``), if the run used it."""
    if not averaged:
        return ""
    verdict = "these averaged weights are the model" if averaged["kept"] else "it was not kept"
    return (
        f"\n- Weight averaging (SWA): the mean of the weights after epochs {averaged['first_epoch']}-"
        f"{averaged['last_epoch']}, BatchNorm statistics recomputed on the training images, reached "
        f"{averaged['val_accuracy']:.2%} validation accuracy; {verdict}."
    )


def write_emotion_card(
    output_dir: str | Path, args: argparse.Namespace, state: Any, results: dict[str, Any], repo: str | None = None
) -> Path:
    """README.md (the Hub model card) for a trained emotion CNN in ``output_dir``."""
    output_dir = Path(output_dir)
    config = json.loads((output_dir / "config.json").read_text())
    processor = json.loads((output_dir / "preprocessor_config.json").read_text())
    params = sum(
        p.numel()
        for p in EmotionCNNForImageClassification(
            EmotionCNNConfig(**{k: config[k] for k in ("channels", "hidden_size", "image_size", "num_channels")})
        ).parameters()
    )
    view = results.get("default_view", "tta_flip")
    tta, plain = results[view], results["no_tta"]
    view_rows = "\n".join(
        f"| this model, {VIEW_LABELS.get(name, name)}{' (its default)' if name == view else ''} | "
        f"{'**' if name == view else ''}{results[name]['accuracy']:.2%}{'**' if name == view else ''} | "
        f"{results[name]['macro_f1']:.3f} |"
        for name in results
        if isinstance(results[name], dict)
    )
    rows = "\n".join(
        f"| {DISPLAY_NAMES[e]} | {m['recall']:.1%} | {m['precision']:.1%} | {m['f1']:.3f} | {m['support']} |"
        for e, m in tta["per_class"].items()
    )
    history = state.history
    text = EMOTION_CARD.format(
        name="emoreply-emotion-cnn",
        repo=repo or args.hub_model_id or "emoreply/emotion-cnn-fer2013",
        view_label=VIEW_LABELS.get(view, view),
        view_rows=view_rows,
        acc=tta["accuracy"],
        acc_plain=plain["accuracy"],
        f1=tta["macro_f1"],
        params=params,
        emotions=", ".join(EMOTIONS),
        n_test=results["num_test_images"],
        per_class=rows,
        best_val=state.best_metric,
        best_epoch=state.best_epoch,
        epochs_run=len(history),
        ips=sum(h["train_images_per_second"] for h in history) / len(history),
        epoch_s=sum(h["epoch_seconds"] for h in history) / len(history),
        margin=processor["face_margin"],
        val_pct=args.val_fraction,
        weighting=args.class_weighting,
        focal=f", focal loss gamma {args.gamma:g}" if args.gamma else "",
        optimizer=args.optimizer.upper() if args.optimizer == "sgd" else "AdamW",
        lr=args.learning_rate,
        wd=args.weight_decay,
        bs=args.batch_size,
        schedule=(
            "constant learning rate"
            if getattr(args, "min_lr_ratio", 0.0) >= 1.0
            else f"cosine schedule with {args.warmup_ratio:.0%} warm-up"
        ),
        max_epochs=args.num_epochs,
        patience=args.patience,
        aug=args.augment_strength,
        conv_do=args.conv_dropout,
        fc_do=args.fc_dropout,
        warm_start=(
            f"\n- Warm start: the weights of `{args.init_from}` began this run's schedule (a warm restart)."
            if getattr(args, "init_from", None)
            else ""
        ),
        averaged=weight_average_line(getattr(state, "averaged", None)),
        notes=training_notes(output_dir),
    )
    path = output_dir / "README.md"
    path.write_text(text)
    return path
