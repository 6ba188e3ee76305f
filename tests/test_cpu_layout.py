"""Transposed linear weights: the same function as nn.Linear, used by ReplyDrafter on CPU."""

from __future__ import annotations

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from emoreply.reply import ReplyDrafter
from emoreply.reply.cpu_layout import TransposedLinear, transpose_linears


def test_transposed_linear_computes_what_nn_linear_does():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3, bias=False))
    x = torch.randn(2, 4, 6)  # (B, T, in)
    expected = model(x)
    weights = [model[0].weight.clone(), model[2].weight.clone()]
    transpose_linears(model)
    assert all(isinstance(model[i], TransposedLinear) for i in (0, 2))
    assert model[0].weight_t.shape == (6, 5) and model[0].weight_t.is_contiguous()
    assert torch.equal(model[0].weight, weights[0]) and torch.equal(model[2].weight, weights[1])  # (out, in) view
    assert model[2].bias is None and not any(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(model(x), expected)
    assert "in_features=5, out_features=3, bias=False" in repr(model[2])


def test_cpu_drafter_transposes_every_linear_and_drafts_the_same_replies(tiny_model_dir):
    plain = AutoModelForSeq2SeqLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    linears = sum(type(m) is torch.nn.Linear for m in plain.modules())
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=8)
    assert not any(type(m) is torch.nn.Linear for m in drafter.model.modules())
    assert sum(isinstance(m, TransposedLinear) for m in drafter.model.modules()) == linears > 0
    # The tied output layer got its own transposed copy; the embedding keeps its (vocab, d_model) rows.
    assert drafter.model.shared.weight.shape == drafter.model.lm_head.weight.shape
    prompts = [drafter.prompt("How is your day going?", e)[0] for e in drafter.emotions]
    assert drafter.generate(prompts) == ReplyDrafter(plain, tokenizer, max_new_tokens=8).generate(prompts)
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=["Fine, thanks."] * len(prompts), return_tensors="pt").input_ids
    with torch.inference_mode():
        torch.testing.assert_close(drafter.model(**enc, labels=labels).logits, plain(**enc, labels=labels).logits)
