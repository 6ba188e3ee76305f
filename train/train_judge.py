"""Train the emotion judge (TF-IDF + logistic regression) that scores generated replies.

    python train/train_judge.py --output_dir runs/reply-judge
    python train/train_judge.py --output_dir /tmp/judge --max_train_samples 2000 --C 1   # smoke

Trained on every DailyDialog train utterance with its emotion label; C is chosen by validation
macro-F1, and the test split is scored once. The judge is saved as JSON + safetensors (no pickle).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from emoreply.emotion_cnn import DAILYDIALOG_TO_EMOTION, EMOTIONS
from emoreply.training.data_sources import add_dataset_arg, check_dataset
from emoreply.training.judge import EmotionJudge
from emoreply.training.metrics import classification_report, plot_confusion_matrix
from emoreply.training.reply_data import load_dialogues

logger = logging.getLogger("train_judge")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/reply-judge")
    add_dataset_arg(parser, "dailydialog")
    parser.add_argument("--C", type=float, nargs="+", default=[0.5, 2.0, 8.0], help="inverse regularisation grid")
    parser.add_argument("--min_df", type=int, default=2)
    parser.add_argument("--max_word_features", type=int, default=50_000)
    parser.add_argument("--max_char_features", type=int, default=100_000)
    parser.add_argument("--max_train_samples", type=int, help="smoke runs: cap training utterances")
    parser.add_argument("--max_eval_samples", type=int, help="smoke runs: cap validation and test utterances")
    return parser.parse_args(argv)


def utterances(source: str, split: str, max_samples: int | None) -> tuple[list[str], list[str]]:
    """(texts, emotion names) of every utterance in ``split`` (normalised later, by the judge)."""
    texts, labels = [], []
    for dialogue in load_dialogues(source, split):
        texts += dialogue["utterances"]
        labels += [DAILYDIALOG_TO_EMOTION[int(e)] for e in dialogue["emotions"]]
    return texts[:max_samples], labels[:max_samples]


def score(judge: EmotionJudge, texts: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1 (over the seven emotions), per-class scores and the confusion matrix."""
    index = {e: i for i, e in enumerate(EMOTIONS)}
    preds = judge.predict(texts)
    return classification_report([index[e] for e in labels], [index[e] for e in preds], EMOTIONS)


def main(argv: list[str] | None = None) -> EmotionJudge:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    check_dataset(args.dataset, "dailydialog")
    output_dir = Path(args.output_dir)
    train = utterances(args.dataset, "train", args.max_train_samples)
    val = utterances(args.dataset, "validation", args.max_eval_samples)
    test = utterances(args.dataset, "test", args.max_eval_samples)
    features = {"word": args.max_word_features, "char": args.max_char_features}
    best, best_f1, search = None, -1.0, {}
    for C in args.C:
        judge = EmotionJudge.fit(*train, C=C, max_features=features, min_df=args.min_df)
        f1 = score(judge, *val)["macro_f1"]
        search[str(C)] = f1
        logger.info("C=%g: validation macro-F1 %.4f", C, f1)
        if f1 > best_f1:
            best, best_f1 = judge, f1
            best.metrics = {"C": C, "validation_macro_f1": f1}
    report = score(best, *test)
    best.metrics.update(
        accuracy=report["accuracy"],
        macro_f1=report["macro_f1"],
        split="test",
        num_train=len(train[0]),
        num_test=len(test[0]),
        c_search=search,
    )
    best.save(output_dir)
    (output_dir / "judge_results.json").write_text(json.dumps({"test": report, "c_search": search}, indent=2) + "\n")
    plot_confusion_matrix(
        report["confusion_matrix"],
        EMOTIONS,
        output_dir / "judge_confusion_matrix.png",
        "Emotion judge on DailyDialog test utterances",
    )
    print(f"judge C={best.metrics['C']:g}: test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    return best


if __name__ == "__main__":
    main()
