"""Evaluate a trained emotion CNN on FER-2013 with every test-time augmentation view; pick its default.

    python train/evaluate_emotion_cnn.py --model runs/emotion-cnn --split validation   # choose a view here
    python train/evaluate_emotion_cnn.py --model runs/emotion-cnn --default_view tta_ten_view --update_card

``--split validation`` rebuilds the training run's held-out split (same seed and fraction, from
its training_args.json), so a view is chosen without looking at the test set. ``--default_view``
writes that view into the model's config.json; the test run then rewrites eval_results.json,
confusion_matrix.png and (with ``--update_card``) the model card.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from emoreply.emotion_cnn import EmotionCNNForImageClassification, EmotionCNNImageProcessor
from emoreply.training.cards import write_emotion_card
from emoreply.training.common import STATE_FILE, TrainerState, sorted_checkpoints
from emoreply.training.data_sources import add_dataset_arg, check_dataset
from emoreply.training.emotion_eval import TTA_VIEWS, test_report
from emoreply.training.fer_data import load_fer_split, stratified_split


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/emotion-cnn", help="folder written by train_emotion_cnn.py")
    add_dataset_arg(parser, "fer2013")
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--default_view", choices=list(TTA_VIEWS), help="store this view in config.json")
    parser.add_argument("--update_card", action="store_true", help="rewrite README.md (test split only)")
    parser.add_argument("--max_eval_samples", type=int, help="smoke runs: cap the images")
    args = parser.parse_args(argv)
    if args.update_card and args.split != "test":
        parser.error("--update_card reports the test split")
    return args


def keep_training_history(model_dir: Path) -> None:
    """The card reads the run's bookkeeping from training_history.json; a run stopped before writing it
    has it in its newest checkpoint, which is copied there."""
    history = model_dir / "training_history.json"
    if history.exists():
        return
    checkpoints = sorted_checkpoints(model_dir)
    if not checkpoints:
        raise SystemExit(f"{model_dir} has neither training_history.json nor checkpoints: cannot write the card")
    state = TrainerState(**json.loads((checkpoints[-1] / STATE_FILE).read_text()))
    history.write_text(json.dumps(asdict(state), indent=1) + "\n")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    check_dataset(args.dataset, "fer2013")
    model_dir = Path(args.model)
    trained = argparse.Namespace(**json.loads((model_dir / "training_args.json").read_text()))
    model = EmotionCNNForImageClassification.from_pretrained(model_dir)
    processor = EmotionCNNImageProcessor.from_pretrained(model_dir)
    if args.default_view:
        model.config.update(TTA_VIEWS[args.default_view])
        model.config.save_pretrained(model_dir)
    if args.split == "validation":
        images, labels = load_fer_split(args.dataset, "train", trained.max_train_samples)
        _, val = stratified_split(labels, trained.val_fraction, trained.seed)
        images, labels, out = images[val], labels[val], model_dir / "validation"
        out.mkdir(exist_ok=True)
    else:
        images, labels = load_fer_split(args.dataset, "test")
        out = model_dir
    images, labels = images[: args.max_eval_samples], labels[: args.max_eval_samples]
    results = test_report(model, processor, images, labels, out)
    for view, metrics in results.items():
        if isinstance(metrics, dict):
            print(f"{args.split} {view}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
    if args.update_card:
        keep_training_history(model_dir)
        write_emotion_card(model_dir)
    return results


if __name__ == "__main__":
    main()
