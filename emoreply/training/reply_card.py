"""The reply model's card (README.md) and the evaluation table shared with evaluate_replies.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

from ..emotion_cnn import EMOTIONS
from ..reply.drafter import DEFAULT_BASE_MODEL_ID, DEFAULT_REPLY_MODEL_ID
from ..reply.prompt import TONES, build_prompt, chat_messages
from .cards import training_notes

ROW_NAMES = {
    "fine_tuned": "fine-tuned",
    "no_guidance": "fine-tuned, no emotion guidance",
    "no_emotion": "fine-tuned, emotion removed from the prompt",
    "base": "base model, same prompt",
    "t5": "compact T5 (the paper's architecture, from scratch)",
    "references": "human reference replies",
}
# (key, header, format): None or missing values print as "—".
COLUMNS = [
    ("relevance_top1", "relevance top-1", "{:.1%}"),
    ("relevance_pmi", "PMI (nats)", "{:.2f}"),
    ("perplexity_per_word", "perplexity / word", "{:.1f}"),
    ("emotion_accuracy", "emotion acc.", "{:.1%}"),
    ("emotion_accuracy_non_neutral", "emotion acc. (non-neutral refs)", "{:.1%}"),
    ("controllability", "controllability", "{:.1%}"),
    ("distinct_1", "distinct-1", "{:.3f}"),
    ("distinct_2", "distinct-2", "{:.3f}"),
    ("copy_rate", "copy rate", "{:.1%}"),
    ("bleu", "BLEU", "{:.2f}"),
    ("mean_reply_words", "words / reply", "{:.1f}"),
]


def results_table(results: dict[str, Any]) -> str:
    """Markdown table of an evaluate_replies.py JSON: one row per evaluated model variant."""
    lines = ["| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for key, row in results["rows"].items():
        cells = [fmt.format(row[k]) if row.get(k) is not None else "—" for k, _, fmt in COLUMNS]
        lines.append(f"| {ROW_NAMES.get(key, key)} | " + " | ".join(cells) + " |")
    per = {
        k: r["controllability_per_emotion"] for k, r in results["rows"].items() if r.get("controllability_per_emotion")
    }
    if per:
        lines += [
            "",
            "Controllability per requested emotion (share of replies the judge reads as that emotion):",
            "",
            "| model | " + " | ".join(EMOTIONS) + " |",
            "|---" * (len(EMOTIONS) + 1) + "|",
        ]
        lines += [
            f"| {ROW_NAMES.get(k, k)} | " + " | ".join(f"{v[e]:.0%}" for e in EMOTIONS) + " |" for k, v in per.items()
        ]
    return "\n".join(lines)


T5_PROMPT = """The model was trained on exactly this string (built by `emoreply.reply.build_prompt`):

```
{example}
{example_history}
```

`context` lists the conversation oldest first and ends with the message being replied to (this model
was trained with {context_turns} turn(s) of context). The emotion is one of `{emotion_list}`.
Inputs and replies are at most {max_source} / {max_target} tokens."""

CHAT_PROMPT = """The model reads a chat in its base model's chat template (built by `emoreply.reply.format_prompt`
from `emoreply.reply.chat_messages`); the reply is the assistant's turn:

```
{example}
```

The tone word is one of `{tones}` (for the emotions `{emotion_list}`); the message is cut to its
first {max_source} tokens, and replies were trained up to {max_target} tokens. The loss covered only the reply
tokens and its end-of-turn token. Without an emotion the system line is "Reply to the text message."."""

CARD = """---
license: cc-by-nc-sa-4.0
library_name: {library}
pipeline_tag: {pipeline}
tags:
- emotional-response-generation
- dailydialog
- {arch_tag}
- emoreply
datasets:
- li2017dailydialog/daily_dialog
{base_model_line}---

# {name}: reply drafter of emoreply

{model_phrase} ({params:,} {param_kind}, {origin}) that drafts a reply to a text message in one of seven
emotions: {emotions}. It is the second half of [emoreply](https://github.com/emoreply/emoreply):
the first half reads the emotion on the reader's face, this model writes a reply in that emotion,
after *My Reaction Says it All* (Garrard, O'Donnell & Taskovski). Replies are **drafts for a person
to read, edit and approve**, never to be sent automatically.

## Prompt format

{prompt_section}

## Evaluation (DailyDialog test split)

{eval_section}

## Training

- Data: DailyDialog (Li et al., 2017; CC BY-NC-SA 4.0), every utterance after a dialogue's first
  as a (context -> response) pair: 76,052 train / 7,069 validation pairs, text de-tokenised
  (`emoreply.reply.normalize_text`). The prompt carries the response's emotion label.{balance}
- {origin_long}
- Optimiser: AdamW, lr {lr:g}, weight decay {wd:g}, batch {bs} x {accum} accumulation, cosine decay
  to {floor:g} of the lr after {warmup:.0%} warm-up, up to {max_epochs} epochs, early stopping on
  validation loss (patience {patience}); mixed precision: {mp}.
- Best validation loss {best:.4f} (perplexity {best_ppl:.1f}) at epoch {best_epoch} of {epochs_run}.{test_line}
- Full arguments: `training_args.json`; per-epoch history: `training_history.json`.{notes}

![training curves](training_curves.png)

## Limitations

- 83% of DailyDialog responses carry no emotion, and fear (0.2%), disgust (0.3%) and anger (0.9%)
  are rare: replies requested in those emotions are often neutral or generic. The controllability
  table above measures how often the requested emotion comes through. Emotion guidance (when the
  model stores a scale) makes it come through more often, at the price of replies that can read as
  overdone for a mild message.
- DailyDialog is scripted English-learning dialogue about everyday topics; the model knows nothing
  of the sender, facts or the wider conversation beyond {context_turns} turn(s), and can produce
  wrong, bland or inappropriate text. Messages in other languages are not supported.
- The data licence (CC BY-NC-SA 4.0) makes this model non-commercial and share-alike.
- Replies are drafts for a person to approve.

## How to use

```python
from emoreply.reply import ReplyDrafter
drafter = ReplyDrafter.from_pretrained("{repo}")
drafter.draft("How is your day going?", "happy").text
drafter.sweep("How is your day going?")   # all seven emotions in one batch
```
"""


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def write_reply_card(output_dir: str | Path, repo: str | None = None) -> Path:
    """README.md for a trained reply model, from the JSON files the scripts leave in ``output_dir``.

    Reads training_args.json and training_history.json (train_reply.py), and when present
    test_results.json and eval_results.json (evaluate_replies.py) and training_notes.md (what a
    person should know about the run, e.g. arguments changed when it was resumed).
    """
    folder = Path(output_dir)
    args = _read(folder, "training_args.json") or {}
    state = _read(folder, "training_history.json") or {"history": [], "best_epoch": 0, "best_metric": float("nan")}
    config = _read(folder, "config.json") or {}
    test, evaluation = _read(folder, "test_results.json"), _read(folder, "eval_results.json")
    adapter = _read(folder, "adapter_config.json")
    params = _count_params(folder, "adapter_model.safetensors" if adapter else "model.safetensors")
    scratch = bool(args.get("config_name") or args.get("config_overrides"))
    base = adapter["base_model_name_or_path"] if adapter else args.get("model_name_or_path", DEFAULT_BASE_MODEL_ID)
    # A folder this script wrote (it has training_args.json) is an earlier cycle, not a base model to cite.
    warm_restart = not scratch and (Path(base) / "training_args.json").is_file()
    best = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
    if evaluation:
        judge = evaluation["judge"]
        judge_note = (
            f" (on human test utterances: accuracy {judge['accuracy']:.1%}, macro-F1 {judge['macro_f1']:.3f}; "
            f"on these reference replies: accuracy {judge['reference_accuracy']:.1%})"
            if judge.get("accuracy") is not None and judge.get("reference_accuracy") is not None
            else ""
        )
        eval_section = (
            f"{evaluation['num_pairs']:,} test pairs, greedy decoding"
            f"{' with no repeated ' + str(n) + '-grams' if (n := evaluation.get('no_repeat_ngram_size')) else ''}"
            + (
                f", emotion guidance {g:g} (classifier-free guidance: each token's log-probability plus {g:g} x "
                "its difference from the same chat without the emotion; `emotion_guidance` in "
                "generation_config.json, read by `ReplyDrafter`; the no-guidance row is the same model without it)"
                if (g := evaluation.get("emotion_guidance"))
                else ""
            )
            + (
                " and the copy guard (a reply that repeats the message is replaced by the best of 4 beams "
                "that does not, as in the app)"
                if evaluation.get("copy_guard")
                else ""
            )
            + "; controllability on "
            f"{evaluation['num_sweep_contexts']:,} contexts x 7 requested emotions. Emotions are read by the "
            f"project's TF-IDF emotion judge{judge_note}, so emotion scores are approximate; a model that always "
            "answers neutrally already scores ~83% emotion accuracy, hence the non-neutral column. Copy rate: "
            f"{evaluation.get('copy_definition', 'reply repeats the message')}"
            + (
                f" (the human reference replies: {evaluation['reference_copy_rate']:.2%})"
                if evaluation.get("reference_copy_rate") is not None
                else ""
            )
            + ". Perplexities of models with "
            "different tokenizers are not comparable.\n\n" + results_table(evaluation)
        )
    else:
        eval_section = "Not evaluated yet: run `train/evaluate_replies.py`, then regenerate this card."
    limits = {"max_source": args.get("max_source_length", 50), "max_target": args.get("max_target_length", 50)}
    if adapter:
        chat = chat_messages("How is your day going?", "happy")
        prompt_section = CHAT_PROMPT.format(
            example="\n".join(f"{m['role']}: {m['content']}" for m in chat) + "\nassistant: <the reply>",
            tones="`, `".join(TONES.values()),
            emotion_list="`, `".join(EMOTIONS),
            **limits,
        )
    else:
        prompt_section = T5_PROMPT.format(
            example=build_prompt("How is your day going?", "happy"),
            example_history=build_prompt("How is your day going?", "sad", ["Hi Sam!", "Hello, long time no see."]),
            context_turns=args.get("context_turns", 1),
            emotion_list="`, `".join(EMOTIONS),
            **limits,
        )
    text = CARD.format(
        name=folder.name,
        library="peft" if adapter else "transformers",
        pipeline="text-generation" if adapter else "text2text-generation",
        arch_tag="smollm2\n- lora" if adapter else "t5",
        model_phrase=f"A LoRA adapter (rank {adapter['r']}) on {base}" if adapter else "A T5",
        param_kind="trained parameters" if adapter else "parameters",
        prompt_section=prompt_section,
        base_model_line="" if scratch or warm_restart else f"base_model: {base}\n",
        params=params,
        origin=(
            "trained from scratch"
            if scratch
            else "trained in several cycles, each from the last"
            if warm_restart
            else f"fine-tuned from {base}"
        ),
        origin_long=(
            f"Model: {base} with LoRA adapters (rank {adapter['r']}, alpha {adapter['lora_alpha']:g}, dropout "
            f"{adapter['lora_dropout']:g}) on every linear layer of its transformer blocks; the base weights frozen."
            if adapter
            else f"Model: T5 from scratch (d_model {config.get('d_model')}, {config.get('num_layers')}+"
            f"{config.get('num_decoder_layers')} layers, {config.get('num_heads')} heads, d_ff {config.get('d_ff')}), "
            f"own Unigram tokenizer ({config.get('vocab_size')} pieces) trained on the training pairs."
            if scratch
            else f"Model: the weights and tokenizer in `{base}` (the previous cycle) trained further end to end."
            if warm_restart
            else f"Model: {base} fine-tuned end to end with its own tokenizer."
        ),
        emotions=", ".join(EMOTIONS),
        context_turns=args.get("context_turns", 1),
        eval_section=eval_section,
        balance=(
            " Rarer emotions were oversampled to sqrt(count x majority count) pairs, at most "
            f"{args.get('balance_max_repeat', 5.0):g}x each (`--balance_emotions`)"
            + (f", then every emotion capped at {cap:,} pairs." if (cap := args.get("max_per_emotion")) else ".")
            if args.get("balance_emotions")
            else ""
        ),
        notes=training_notes(folder),
        lr=args.get("learning_rate", 0),
        wd=args.get("weight_decay", 0),
        bs=args.get("batch_size", 0),
        accum=args.get("gradient_accumulation_steps", 1),
        floor=args.get("min_lr_ratio", 0),
        warmup=args.get("warmup_ratio", 0),
        max_epochs=args.get("num_epochs", 0),
        patience=args.get("patience", 0),
        mp=args.get("mixed_precision", "no"),
        best=best.get("val_loss", float("nan")),
        best_ppl=best.get("val_perplexity", float("nan")),
        best_epoch=state["best_epoch"],
        epochs_run=len(state["history"]),
        test_line=(f" Test loss {test['loss']:.4f} (perplexity {test['perplexity']:.1f})." if test else ""),
        repo=repo or args.get("hub_model_id") or DEFAULT_REPLY_MODEL_ID,
    )
    path = folder / "README.md"
    path.write_text(text)
    return path


def _count_params(folder: Path, name: str = "model.safetensors") -> int:
    """Parameters in the saved safetensors (tied embeddings are stored, and counted, once)."""
    path = folder / name
    if not path.exists():
        return 0
    with safe_open(str(path), framework="pt") as f:
        return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
