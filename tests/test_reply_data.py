"""DailyDialog -> pairs, balancing, tokenisation with -100 label padding."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from emoreply.reply.prompt import build_prompt
from emoreply.training.reply_data import (
    LengthGroupedSampler,
    balance_emotions,
    dialogues_to_pairs,
    load_dialogues,
    load_pairs,
    make_collator,
    pair_lengths,
    tokenize_pairs,
    write_jsonl,
)

DIALOGUE = {
    "utterances": ["Hello , how are you ?", "I ’ m great !", "Why ?", "I won a prize .", "Wow !"],
    "emotions": [0, 4, 0, 4, 6],
}


def test_a_dialogue_of_n_utterances_gives_n_minus_1_pairs():
    cols = dialogues_to_pairs([DIALOGUE, {"utterances": ["a", "b"], "emotions": [0, 1]}])
    assert len(cols["prompt"]) == 4 + 1
    assert cols["context"][:2] == ["Hello, how are you?", "I'm great!"]
    assert cols["response"][:2] == ["I'm great!", "Why?"]
    assert cols["emotion"] == ["happy", "neutral", "happy", "surprise", "angry"]  # the response's emotion
    # Training and inference share one prompt function: the column is exactly build_prompt's output.
    assert (
        cols["prompt"][0]
        == build_prompt("Hello, how are you?", "happy")
        == ('emotion: happy | context: "Hello, how are you?"')
    )


def test_context_turns_include_earlier_turns_in_order():
    cols = dialogues_to_pairs([DIALOGUE], context_turns=3)
    assert cols["history"] == [
        [],
        ["Hello, how are you?"],
        ["Hello, how are you?", "I'm great!"],
        ["I'm great!", "Why?"],
    ]
    assert cols["prompt"][2] == build_prompt("Why?", "happy", ["Hello, how are you?", "I'm great!"])
    plain = dialogues_to_pairs([DIALOGUE], context_turns=2, with_emotion=False)
    assert plain["prompt"][1] == 'context: "Hello, how are you?" | "I\'m great!"'
    with pytest.raises(ValueError):
        dialogues_to_pairs([DIALOGUE], context_turns=0)


def test_history_is_trimmed_to_the_token_budget():
    def count(s: str) -> int:
        return len(s.split())

    cols = dialogues_to_pairs([DIALOGUE], context_turns=4, count_tokens=count, max_source_tokens=10)
    assert all(count(p) <= 10 for p in cols["prompt"])
    assert cols["history"][3] == ["Why?"]  # of "Hello, how are you?", "I'm great!", "Why?": oldest dropped first


def test_load_pairs_from_a_folder(dailydialog_dir):
    dialogues = [json.loads(line) for line in (dailydialog_dir / "train.jsonl").read_text().splitlines()]
    pairs = load_pairs(dailydialog_dir, "train")
    assert len(pairs) == sum(len(d["utterances"]) - 1 for d in dialogues)
    assert set(pairs.column_names) >= {"emotion", "context", "response", "prompt"}
    assert len(load_pairs(dailydialog_dir, "train", max_samples=7)) == 7
    with pytest.raises(FileNotFoundError, match="nosuch.jsonl"):
        load_dialogues(dailydialog_dir, "nosuch")


def test_original_dailydialog_column_names_are_accepted(tmp_path):
    (tmp_path / "test.jsonl").write_text(json.dumps({"dialog": ["Hi !", "Hello ."], "emotion": [0, 4]}) + "\n")
    assert load_dialogues(tmp_path, "test") == [{"utterances": ["Hi !", "Hello ."], "emotions": [0, 4]}]
    write_jsonl([{"utterances": ["a", "b"], "emotions": [0]}], tmp_path / "train.jsonl")
    with pytest.raises(ValueError, match="2 utterances but 1 emotion"):
        load_dialogues(tmp_path, "train")


def test_balance_emotions_oversamples_rare_emotions():
    import datasets

    pairs = datasets.Dataset.from_dict({"emotion": ["neutral"] * 100 + ["happy"] * 25 + ["fear"] * 1})
    counts = Counter(balance_emotions(pairs, max_repeat=5.0, seed=0)["emotion"])
    assert counts == {"neutral": 100, "happy": 50, "fear": 5}  # sqrt(25 * 100) = 50; fear capped at 5x


def test_tokenize_and_collate_pad_labels_with_minus_100(tiny_tokenizer):
    import datasets

    pairs = datasets.Dataset.from_dict(dialogues_to_pairs([DIALOGUE]))
    tok = tokenize_pairs(pairs, tiny_tokenizer, max_source_tokens=12, max_target_tokens=4)
    assert tok.column_names == ["input_ids", "attention_mask", "labels"]
    assert all(len(x) <= 12 and x[-1] == tiny_tokenizer.eos_token_id for x in tok["input_ids"])
    assert all(len(x) <= 4 and x[-1] == tiny_tokenizer.eos_token_id for x in tok["labels"])
    batch = make_collator(tiny_tokenizer)([tok[i] for i in range(len(tok))])
    lengths = [len(x) for x in tok["labels"]]
    for row, n in zip(batch["labels"].tolist(), lengths, strict=True):
        assert row[n:] == [-100] * (len(row) - n) and -100 not in row[:n]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tiny_tokenizer.pad_token_id).all()


def test_length_grouped_sampler_covers_every_pair_once_with_less_padding():
    import numpy as np

    lengths = np.random.default_rng(0).integers(5, 100, size=1000)
    sampler = LengthGroupedSampler(lengths, batch_size=32, seed=3, mega_batches=4)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    batches = [order[i : i + 32] for i in range(0, 1000, 32)]
    assert len(batches[-1]) == 1000 % 32  # only the last batch is short, so DataLoader cuts these groups

    def padded(batch_list):
        return sum(lengths[b].max() * len(b) for b in batch_list)

    shuffled = np.random.default_rng(1).permutation(1000)
    assert padded(batches) < 0.75 * padded([shuffled[i : i + 32] for i in range(0, 1000, 32)])
    assert list(sampler) == order  # deterministic for an epoch (resume replays it)
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_pair_lengths_weigh_target_tokens_double():
    assert pair_lengths({"input_ids": [[1, 2, 3], [1]], "labels": [[1], [1, 2]]}) == [5, 5]
