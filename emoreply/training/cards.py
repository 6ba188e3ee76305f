"""Model cards: the README.md beside a model's weights, rendered from what its runs left in the folder.

The text is a Jinja template in ``model_cards/`` (the one source of every card), filled by
``huggingface_hub.ModelCard.from_template``; the YAML metadata, the model-index included, is a
``ModelCardData`` with ``EvalResult`` entries. A card is a function of its folder's files
(training_args.json, training_history.json, eval_results.json, training_notes.md, ...), so rendering
a folder again gives the same card: tests/test_cards.py holds the bundled models to that.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

from ..emotion_cnn import DISPLAY_NAMES, EMOTIONS, EmotionCNNConfig, EmotionCNNForImageClassification
from ..reader import EMOTION_MODEL_HUB_ID
from ..reply.drafter import DEFAULT_BASE_MODEL_ID, REPLY_MODELS
from ..reply.prompt import TONES, build_prompt, chat_messages

TEMPLATES = Path(__file__).resolve().parents[2] / "model_cards"  # in the repository, beside train/
EMOTION_TEMPLATE = TEMPLATES / "emotion_cnn.md.j2"
REPLY_TEMPLATE = TEMPLATES / "reply.md.j2"
CARD = "README.md"

VIEW_LABELS = {
    "no_tta": "no test-time augmentation",
    "tta_flip": "mirror test-time augmentation (2 views)",
    "tta_ten_view": "ten-view test-time augmentation (mirror x 2-pixel shifts)",
    "configured": "the configured test-time augmentation",
}

ROW_NAMES = {
    "fine_tuned": "fine-tuned",
    "no_guidance": "fine-tuned, no emotion guidance",
    "no_emotion": "fine-tuned, emotion removed from the prompt",
    "base": "base model, same prompt",
    "t5": "compact T5 (the paper's architecture, from scratch)",
    "references": "human reference replies",
}
# (key, header, format) of the evaluation table; a column no row has a value for is left out, and
# a missing value in a shown column prints as "—".
COLUMNS = [
    ("relevance_top1", "relevance top-1", "{:.1%}"),
    ("relevance_pmi", "PMI (nats)", "{:.2f}"),
    ("sweep_relevance_top1", "relevance top-1 (sweeps)", "{:.1%}"),
    ("sweep_relevance_pmi", "PMI (sweeps)", "{:.2f}"),
    ("perplexity_per_word", "perplexity / word", "{:.1f}"),
    ("emotion_accuracy", "emotion acc.", "{:.1%}"),
    ("emotion_accuracy_non_neutral", "emotion acc. (non-neutral refs)", "{:.1%}"),
    ("controllability", "controllability", "{:.1%}"),
    ("distinct_1", "distinct-1", "{:.3f}"),
    ("distinct_2", "distinct-2", "{:.3f}"),
    ("copy_rate", "copy rate", "{:.1%}"),
    ("blocked_rate", "blocked words", "{:.1%}"),
    ("sweep_blocked_rate", "blocked words (sweeps)", "{:.1%}"),
    ("bleu", "BLEU", "{:.2f}"),
    ("mean_reply_words", "words / reply", "{:.1f}"),
]
# (row key, title) of the per-requested-emotion tables under it.
PER_EMOTION_TABLES = [
    (
        "controllability_per_emotion",
        "Controllability per requested emotion (share of replies the judge reads as that emotion)",
    ),
    (
        "sweep_relevance_per_emotion",
        "Relevance top-1 per requested emotion (sweeps: share of replies whose own message ranks first)",
    ),
]
# Per-token loss and perplexity, which evaluations before the per-word perplexity reported: beside it.
PER_TOKEN_COLUMNS = [("loss", "loss", "{:.3f}"), ("perplexity", "perplexity", "{:.1f}")]
_AT = [key for key, _, _ in COLUMNS].index("perplexity_per_word") + 1
TABLE_COLUMNS = COLUMNS[:_AT] + PER_TOKEN_COLUMNS + COLUMNS[_AT:]
# What the reply card's model-index reports of the fine-tuned row: (key, metric type, name).
REPLY_INDEX = [
    ("emotion_accuracy", "accuracy", "Emotion accuracy (judged)"),
    ("controllability", "accuracy", "Controllability (judged, 7 emotions)"),
    ("perplexity_per_word", "perplexity", "Perplexity per word"),
    ("perplexity", "perplexity", "Perplexity per token"),
    ("distinct_2", "distinct-2", "Distinct-2"),
    ("bleu", "bleu", "BLEU"),
]


def read_json(folder: Path, name: str) -> Any:
    """A JSON file of the run folder, or None when the run did not write it."""
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def training_notes(folder: Path) -> str:
    """``training_notes.md``: what a person should know about the run (e.g. arguments changed on resuming)."""
    notes = folder / "training_notes.md"
    return notes.read_text().strip() if notes.exists() else ""


def render(template: Path, data: ModelCardData, **values: Any) -> ModelCard:
    """The card from ``template`` with ``data`` as its YAML header; the file ends with a newline."""
    if not template.is_file():
        raise FileNotFoundError(f"No card template {template}: cards are written from a checkout of the repository")
    card = ModelCard.from_template(data, template_path=str(template), **values)
    card.text = card.text.rstrip("\n") + "\n"
    return card


def save(card: ModelCard, folder: Path) -> Path:
    path = folder / CARD
    card.save(path)
    return path


def emotion_card(folder: str | Path, repo: str | None = None) -> ModelCard:
    """The card of a trained emotion CNN, from training_args.json, training_history.json,
    eval_results.json (the test report), config.json, preprocessor_config.json and training_notes.md."""
    folder = Path(folder)
    args, history = read_json(folder, "training_args.json"), read_json(folder, "training_history.json")
    results, config = read_json(folder, "eval_results.json"), read_json(folder, "config.json")
    shape = {k: config[k] for k in ("channels", "hidden_size", "image_size", "num_channels")}
    params = sum(p.numel() for p in EmotionCNNForImageClassification(EmotionCNNConfig(**shape)).parameters())
    default = results.get("default_view", "tta_flip")
    view_label = VIEW_LABELS.get(default, default)
    views = [
        {"label": VIEW_LABELS.get(name, name), "default": name == default, **metrics}
        for name, metrics in results.items()
        if isinstance(metrics, dict)
    ]
    per_class = [{"name": DISPLAY_NAMES[e], **m} for e, m in results[default]["per_class"].items()]
    epochs = history["history"]
    run = {
        "best_metric": history["best_metric"],
        "best_epoch": history["best_epoch"],
        "epochs_run": len(epochs),
        "images_per_second": sum(h["train_images_per_second"] for h in epochs) / len(epochs),
        "epoch_seconds": sum(h["epoch_seconds"] for h in epochs) / len(epochs),
    }
    name = "emoreply-emotion-cnn"
    test = {
        "task_type": "image-classification",
        "task_name": "Facial expression recognition",
        "dataset_type": "fer2013",
        "dataset_name": "FER-2013 (PublicTest split)",
        "dataset_split": "test",
    }
    data = ModelCardData(
        license="mit",
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["facial-expression-recognition", "fer2013", "emoreply"],
        datasets=["fer2013"],
        metrics=["accuracy", "f1"],
        model_name=name,
        eval_results=[
            EvalResult(
                **test,
                metric_type="accuracy",
                metric_value=round(results[default]["accuracy"], 4),
                metric_name=f"Accuracy ({view_label})",
            ),
            EvalResult(
                **test,
                metric_type="accuracy",
                metric_value=round(results["no_tta"]["accuracy"], 4),
                metric_name="Accuracy (no TTA)",
            ),
            EvalResult(
                **test,
                metric_type="f1",
                metric_value=round(results[default]["macro_f1"], 4),
                metric_name=f"Macro F1 ({view_label})",
            ),
        ],
    )
    return render(
        EMOTION_TEMPLATE,
        data,
        name=name,
        repo=repo or args.get("hub_model_id") or EMOTION_MODEL_HUB_ID,
        params=params,
        emotions=EMOTIONS,
        num_test_images=results["num_test_images"],
        views=views,
        view_label=view_label,
        per_class=per_class,
        run=run,
        processor=read_json(folder, "preprocessor_config.json"),
        args=args,
        averaged=history.get("averaged"),
        notes=training_notes(folder),
    )


def write_emotion_card(output_dir: str | Path, repo: str | None = None) -> Path:
    """README.md (the Hub model card) of the emotion CNN in ``output_dir`` (see :func:`emotion_card`)."""
    return save(emotion_card(output_dir, repo), Path(output_dir))


def results_table(results: dict[str, Any]) -> str:
    """Markdown table of an evaluate_replies.py JSON: one row per evaluated model variant."""
    rows = results["rows"]
    columns = [c for c in TABLE_COLUMNS if any(row.get(c[0]) is not None for row in rows.values())]
    lines = ["| model | " + " | ".join(h for _, h, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, row in rows.items():
        cells = [fmt.format(row[k]) if row.get(k) is not None else "—" for k, _, fmt in columns]
        lines.append(f"| {ROW_NAMES.get(key, key)} | " + " | ".join(cells) + " |")
    for key, title in PER_EMOTION_TABLES:
        per = {k: r[key] for k, r in rows.items() if r.get(key)}
        if per:
            lines += [
                "",
                f"{title}:",
                "",
                "| model | " + " | ".join(EMOTIONS) + " |",
                "|---" * (len(EMOTIONS) + 1) + "|",
            ]
            lines += [
                f"| {ROW_NAMES.get(k, k)} | " + " | ".join(f"{v[e]:.0%}" for e in EMOTIONS) + " |"
                for k, v in per.items()
            ]
    return "\n".join(lines)


def count_params(path: Path) -> int:
    """Parameters in a safetensors file (tied embeddings are stored, and counted, once); 0 if absent."""
    if not path.exists():
        return 0
    with safe_open(str(path), framework="pt") as f:
        return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())


def reply_card(folder: str | Path, repo: str | None = None) -> ModelCard:
    """The card of a trained reply model, from training_args.json and training_history.json
    (train_reply.py), and when present test_results.json, eval_results.json (evaluate_replies.py) and
    training_notes.md; the architecture from config.json or adapter_config.json."""
    folder = Path(folder)
    args = read_json(folder, "training_args.json") or {}
    history = read_json(folder, "training_history.json") or {"history": [], "best_epoch": 0}
    config = read_json(folder, "config.json") or {}
    evaluation = read_json(folder, "eval_results.json")
    adapter = read_json(folder, "adapter_config.json")
    scratch = bool(args.get("config_name") or args.get("config_overrides"))
    base = adapter["base_model_name_or_path"] if adapter else args.get("model_name_or_path", DEFAULT_BASE_MODEL_ID)
    # A folder this script wrote (it has training_args.json) is an earlier cycle, not a base model to cite.
    warm_restart = not scratch and (Path(base) / "training_args.json").is_file()
    best = next((h for h in history["history"] if h["epoch"] == history["best_epoch"]), {})
    kind = "smollm2" if adapter else "t5"
    tags = ["emotional-response-generation", "dailydialog", *(["smollm2", "lora"] if adapter else ["t5"]), "emoreply"]
    pipeline = "text-generation" if adapter else "text2text-generation"
    eval_results = reply_eval_results(evaluation, pipeline)
    data = ModelCardData(
        license="cc-by-nc-sa-4.0",
        library_name="peft" if adapter else "transformers",
        pipeline_tag=pipeline,
        tags=tags,
        datasets=["li2017dailydialog/daily_dialog"],
        base_model=None if scratch or warm_restart else base,
        model_name=folder.name if eval_results else None,  # the model-index's name
        eval_results=eval_results,
    )
    return render(
        REPLY_TEMPLATE,
        data,
        name=folder.name,
        repo=repo or args.get("hub_model_id") or REPLY_MODELS[kind][1],
        adapter=adapter,
        base=base,
        scratch=scratch,
        warm_restart=warm_restart,
        params=count_params(folder / ("adapter_model.safetensors" if adapter else "model.safetensors")),
        origin=(
            "trained from scratch"
            if scratch
            else "trained in several cycles, each from the last"
            if warm_restart
            else f"fine-tuned from {base}"
        ),
        emotions=EMOTIONS,
        tones=list(TONES.values()),
        chat_example=chat_messages("How is your day going?", "happy"),
        prompt_examples=[
            build_prompt("How is your day going?", "happy"),
            build_prompt("How is your day going?", "sad", ["Hi Sam!", "Hello, long time no see."]),
        ],
        context_turns=args.get("context_turns", 1),
        max_source=args.get("max_source_length", 50),
        max_target=args.get("max_target_length", 50),
        config=config,
        args=args,
        history=history,
        best={"val_loss": best.get("val_loss", math.nan), "val_perplexity": best.get("val_perplexity", math.nan)},
        test=read_json(folder, "test_results.json"),
        evaluation=evaluation,
        judge=(evaluation or {}).get("judge", {}),
        results_table=results_table(evaluation) if evaluation else "",
        notes=training_notes(folder),
    )


def reply_eval_results(evaluation: dict[str, Any] | None, pipeline: str) -> list[EvalResult] | None:
    """The model-index entries of a reply model: the fine-tuned row's headline figures."""
    if not evaluation:
        return None
    row = evaluation["rows"]["fine_tuned"]
    test = {
        "task_type": pipeline,
        "task_name": "Emotional response generation",
        "dataset_type": "li2017dailydialog/daily_dialog",
        "dataset_name": f"DailyDialog ({evaluation.get('split', 'test')} split)",
        "dataset_split": evaluation.get("split", "test"),
    }
    return [
        EvalResult(**test, metric_type=kind, metric_value=round(row[key], 4), metric_name=name)
        for key, kind, name in REPLY_INDEX
        if row.get(key) is not None
    ] or None


def write_reply_card(output_dir: str | Path, repo: str | None = None) -> Path:
    """README.md (the Hub model card) of the reply model in ``output_dir`` (see :func:`reply_card`)."""
    return save(reply_card(output_dir, repo), Path(output_dir))
