"""DailyDialog as (context -> response) pairs for the reply model, and their tokenisation.

Every utterance after a dialogue's first is one pair: the reply model learns to answer the
previous utterance (plus up to ``context_turns - 1`` earlier ones) in the response's emotion.
Train/validation/test give 76,052 / 7,069 / 6,740 pairs; 82% of responses are "no emotion".

Both kinds of reply model read the same pairs: a seq2seq model (T5) gets the prompt as encoder
input and the response as labels; a chat model (causal LM) gets prompt + response + end-of-turn
as one sequence, with the loss on the response tokens only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq

from ..constants import MAX_CHAT_PROMPT_TOKENS, MAX_SOURCE_TOKENS, MAX_TARGET_TOKENS
from ..emotion_cnn import DAILYDIALOG_TO_EMOTION
from ..reply.prompt import build_prompt, chat_renderer, fit_history, is_chat_tokenizer, normalize_text


def load_dialogues(source: str | Path, split: str, max_dialogues: int | None = None) -> list[dict[str, list]]:
    """Dialogues ``{"utterances": [...], "emotions": [...]}`` of ``split`` from a jsonl folder or a Hub id.

    The folder holds ``{split}.jsonl``; a Hub dataset may use DailyDialog's original column names
    ``dialog``/``emotion``, which are accepted too.
    """
    path = Path(source)
    if path.is_dir():
        file = path / f"{split}.jsonl"
        if not file.exists():
            raise FileNotFoundError(f"No {split}.jsonl in {path}")
        ds = datasets.load_dataset("json", data_files={split: str(file)}, split=split)
    else:
        ds = datasets.load_dataset(str(source), split=split)  # Hub dataset id (needs the network)
    if max_dialogues is not None:
        ds = ds.select(range(min(max_dialogues, len(ds))))
    utt_col = "utterances" if "utterances" in ds.column_names else "dialog"
    emo_col = "emotions" if "emotions" in ds.column_names else "emotion"
    dialogues = [{"utterances": u, "emotions": e} for u, e in zip(ds[utt_col], ds[emo_col], strict=True)]
    for i, d in enumerate(dialogues):
        if len(d["utterances"]) != len(d["emotions"]):
            raise ValueError(
                f"{source} {split} dialogue {i}: {len(d['utterances'])} utterances but "
                f"{len(d['emotions'])} emotion labels"
            )
    return dialogues


def dialogues_to_pairs(
    dialogues: list[dict[str, list]],
    context_turns: int = 1,
    with_emotion: bool = True,
    count_tokens: Callable[[str], int] | None = None,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    render: Callable[[str, str | None, list[str]], str] = build_prompt,
) -> dict[str, list]:
    """Columns emotion, context (the message replied to), history (earlier turns), response, prompt.

    ``emotion`` is the response's (the emotion the reply is written in); ``prompt`` is ``render``'s
    (default: the T5 string; ``reply.prompt.chat_renderer`` for chat models). With ``count_tokens`` (e.g.
    ``lambda s: len(tokenizer(s).input_ids)``) the oldest history turns are dropped until the prompt
    fits ``max_source_tokens``, exactly as the drafter does at inference.
    """
    if context_turns < 1:
        raise ValueError(f"context_turns must be >= 1, got {context_turns}")
    cols: dict[str, list] = {"emotion": [], "context": [], "history": [], "response": [], "prompt": []}
    for dialogue in dialogues:
        turns = [normalize_text(u) for u in dialogue["utterances"]]
        for i in range(1, len(turns)):
            emotion = DAILYDIALOG_TO_EMOTION[int(dialogue["emotions"][i])]
            history = turns[max(0, i - context_turns) : i - 1]
            if count_tokens is not None:
                history = fit_history(turns[i - 1], emotion, history, count_tokens, max_source_tokens, render)
            cols["emotion"].append(emotion)
            cols["context"].append(turns[i - 1])
            cols["history"].append(history)
            cols["response"].append(turns[i])
            cols["prompt"].append(render(turns[i - 1], emotion if with_emotion else None, history))
    return cols


def load_pairs(
    source: str | Path,
    split: str,
    context_turns: int = 1,
    max_samples: int | None = None,
    with_emotion: bool = True,
    tokenizer: Any = None,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
):
    """DailyDialog ``split`` as a ``datasets.Dataset`` of pairs (see :func:`dialogues_to_pairs`).

    Pass the model's ``tokenizer``: a chat model's prompts are rendered with its chat template, and
    with ``context_turns > 1`` long histories are trimmed the way the drafter trims them.
    ``max_samples`` keeps the first pairs (smoke runs).
    """
    count = None
    render = build_prompt
    if tokenizer is not None and is_chat_tokenizer(tokenizer):
        render = chat_renderer(tokenizer, max_source_tokens)
        max_source_tokens = MAX_CHAT_PROMPT_TOKENS
    if tokenizer is not None and context_turns > 1:
        count = lambda s: len(tokenizer(s)["input_ids"])  # noqa: E731
    cols = dialogues_to_pairs(
        load_dialogues(source, split), context_turns, with_emotion, count, max_source_tokens, render
    )
    pairs = datasets.Dataset.from_dict(cols)
    if max_samples is not None:
        pairs = pairs.select(range(min(max_samples, len(pairs))))
    return pairs


def balance_emotions(pairs, max_repeat: float = 5.0, seed: int = 0, max_per_emotion: int | None = None):
    """Oversample the rarer emotions: each to sqrt(count x majority count) pairs, at most ``max_repeat`` x.

    The geometric mean halves the imbalance on a log scale (happy 10k -> 25k next to 62k neutral)
    without repeating the 123 "fear" pairs hundreds of times. ``max_per_emotion`` then caps every
    emotion (a fine-tune that sees a few thousand pairs should not spend most of them on "neutral";
    with ``max_repeat=1`` it is a balanced subsample). Returns a shuffled Dataset.
    """
    rng = np.random.default_rng(seed)
    emotions = np.asarray(pairs["emotion"])
    names, counts = np.unique(emotions, return_counts=True)
    majority = counts.max()
    indices = []
    for name, count in zip(names, counts, strict=True):
        idx = np.flatnonzero(emotions == name)
        factor = min(math.sqrt(majority / count), max_repeat)
        target = int(round(count * factor))
        if max_per_emotion is not None:
            target = min(target, max_per_emotion)
        whole, extra = divmod(target, count)
        indices.extend(np.tile(idx, whole))
        indices.extend(rng.choice(idx, size=extra, replace=False))
    indices = np.asarray(indices)
    rng.shuffle(indices)
    return pairs.select(indices.tolist())


def tokenize_pairs(
    pairs,
    tokenizer: Any,
    max_source_tokens: int = MAX_SOURCE_TOKENS,
    max_target_tokens: int = MAX_TARGET_TOKENS,
    prompt_column: str = "prompt",
):
    """input_ids / attention_mask from the prompt and labels from the response, unpadded (eos kept).

    Padding happens per batch in :func:`make_collator`, with labels padded as -100 so padding never
    counts in the loss. For a chat model the prompt is already rendered (and its message cut) by
    ``reply.prompt.chat_renderer``; labels are the response tokens followed by the end-of-turn token.
    """
    if is_chat_tokenizer(tokenizer):
        eos = tokenizer.eos_token_id

        def encode_chat(batch: dict[str, list]) -> dict[str, list]:
            prompts = tokenizer(batch[prompt_column], add_special_tokens=False)["input_ids"]
            replies = tokenizer(batch["response"], add_special_tokens=False)["input_ids"]
            return {"input_ids": prompts, "labels": [r[: max_target_tokens - 1] + [eos] for r in replies]}

        return pairs.map(encode_chat, batched=True, remove_columns=pairs.column_names, desc="tokenize")

    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch[prompt_column], max_length=max_source_tokens, truncation=True)
        enc["labels"] = tokenizer(text_target=batch["response"], max_length=max_target_tokens, truncation=True)[
            "input_ids"
        ]
        return dict(enc)

    return pairs.map(encode, batched=True, remove_columns=pairs.column_names, desc="tokenize")


class LengthGroupedSampler:
    """A shuffled order in which each run of ``batch_size`` indices has similar lengths.

    Random batches of DailyDialog pad to ~1.6x the real tokens (the longest of 32 pairs sets the
    width); sorting inside shuffled mega-batches of ``mega_batches`` batches keeps the order random
    at the batch level while cutting that padding, so an epoch costs ~40% less. Every batch is full
    except possibly the last, so a plain ``DataLoader(batch_size=...)`` cuts exactly these groups.
    ``set_epoch`` (called by Accelerate) reshuffles deterministically from ``seed``.
    """

    def __init__(self, lengths: list[int] | np.ndarray, batch_size: int, seed: int = 0, mega_batches: int = 64):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.mega_batches, self.epoch = batch_size, seed, mega_batches, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        order, size = rng.permutation(len(self.lengths)), self.batch_size
        batches = []
        for start in range(0, len(order), size * self.mega_batches):
            chunk = order[start : start + size * self.mega_batches]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        full = [b for b in batches if len(b) == size]
        short = [b for b in batches if len(b) < size]  # at most one; last, so batch boundaries hold
        for i in rng.permutation(len(full)):
            yield from full[i].tolist()
        for batch in short:
            yield from batch.tolist()


def pair_lengths(tokenized) -> list[int]:
    """A cost per tokenized pair for :class:`LengthGroupedSampler`: source + 2 x target tokens.

    Target tokens count double: each one runs the decoder and the vocabulary projection.
    """
    return [len(s) + 2 * len(t) for s, t in zip(tokenized["input_ids"], tokenized["labels"], strict=True)]


def make_collator(tokenizer: Any):
    """Pads input_ids with the pad id and labels with -100, per batch (dynamic padding).

    A chat model's batches are :class:`ChatCollator`'s: prompt and response joined in one sequence.
    """
    if is_chat_tokenizer(tokenizer):
        return ChatCollator(tokenizer.pad_token_id)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True, return_tensors="pt")


class ChatCollator:
    """Causal-LM batches: prompts padded on the left, responses on the right, so every response
    starts at the same column ``P`` (the longest prompt's length)::

        [pad pad p p p | r r r eos pad]      labels: -100 everywhere but the response columns
        [p p p p p     | r eos pad pad pad]

    The loss then needs the vocabulary projection only from column ``P - 1`` on (see
    ``reply_metrics.token_losses``), which saves a fifth of a SmolLM2 training step. ``position_ids``
    count real tokens only, so left padding does not shift a prompt's positions.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width_p = max(len(f["input_ids"]) for f in features)
        width_r = max(len(f["labels"]) for f in features)
        n = len(features)
        input_ids = torch.full((n, width_p + width_r), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((n, width_p + width_r), dtype=torch.long)
        labels = torch.full((n, width_p + width_r), -100, dtype=torch.long)
        for i, f in enumerate(features):
            p, r = f["input_ids"], f["labels"]
            input_ids[i, width_p - len(p) : width_p] = torch.tensor(p)
            input_ids[i, width_p : width_p + len(r)] = torch.tensor(r)
            attention_mask[i, width_p - len(p) : width_p + len(r)] = 1
            labels[i, width_p : width_p + len(r)] = torch.tensor(r)
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "labels": labels,
        }


def write_jsonl(dialogues: list[dict[str, list]], path: str | Path) -> Path:
    """Write dialogues in the DailyDialog jsonl layout (tests and small custom corpora)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dialogues))
    return path
