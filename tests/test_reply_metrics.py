"""Reply metrics: distinct-n, copy rate, padding-free loss."""

from __future__ import annotations

import math

import torch
from transformers import T5Config, T5ForConditionalGeneration

from emoreply.reply.copy_guard import is_copy
from emoreply.training.reply_metrics import copy_rate, corpus_loss, distinct_n, token_losses


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n([], 1) == 0.0


def test_copy_definition():
    assert is_copy("Hello, how are you?", "hello how are you")  # identical words
    assert is_copy("how are you today", "Hi! How are you today, Sam?")  # >= 80% of >= 3 words
    assert not is_copy("Yes.", "Yes, it is.")  # short replies only count when identical
    assert is_copy("Yes.", "yes")
    assert not is_copy("I am fine, thanks.", "How are you?")
    assert not is_copy("", "anything")
    assert copy_rate(["how are you", "fine"], ["how are you", "how are you"]) == 0.5


def test_loss_ignores_label_padding():
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=30,
            d_model=8,
            d_kv=4,
            d_ff=16,
            num_layers=1,
            num_decoder_layers=1,
            num_heads=2,
            decoder_start_token_id=0,
        )
    ).eval()
    x = {"input_ids": torch.tensor([[5, 6, 1]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    short = {**x, "labels": torch.tensor([[7, 8, 1]])}
    padded = {**x, "labels": torch.tensor([[7, 8, 1, -100, -100]])}
    with torch.no_grad():
        a, na = token_losses(model, short)
        b, nb = token_losses(model, padded)
        mean = model(**short).loss.item()
    assert int(na) == int(nb) == 3 and torch.allclose(a, b)
    report = corpus_loss(model, [short, padded])
    assert math.isclose(report["loss"], mean, rel_tol=1e-5) and report["tokens"] == 6
    assert math.isclose(report["perplexity"], math.exp(mean), rel_tol=1e-5)
