"""The transposed output layer: the same function as nn.Linear, used by ReplyDrafter on CPU."""

from __future__ import annotations

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from emoreply.reply import ReplyDrafter
from emoreply.reply.cpu_layout import TransposedLinear


def test_transposed_linear_computes_what_nn_linear_does():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6)  # (B, T, in)
    for linear in (torch.nn.Linear(6, 5), torch.nn.Linear(6, 3, bias=False)):
        transposed = TransposedLinear(linear)
        assert transposed.weight_t.shape == (6, linear.out_features) and transposed.weight_t.is_contiguous()
        assert torch.equal(transposed.weight, linear.weight)  # the (out, in) view code written for nn.Linear reads
        assert not any(p.requires_grad for p in transposed.parameters())
        torch.testing.assert_close(transposed(x), linear(x))
    assert "in_features=6, out_features=3, bias=False" in repr(transposed)


def test_cpu_drafter_transposes_the_output_layer_and_drafts_the_same_replies(tiny_model_dir):
    plain = AutoModelForSeq2SeqLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    linears = sum(type(m) is torch.nn.Linear for m in plain.modules())
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=8)
    assert isinstance(drafter.model.lm_head, TransposedLinear) and drafter.model.get_output_embeddings() is not None
    assert sum(type(m) is torch.nn.Linear for m in drafter.model.modules()) == linears - 1
    # The tied output layer got its own transposed copy; the embedding keeps its (vocab, d_model) rows.
    assert torch.equal(drafter.model.shared.weight, drafter.model.lm_head.weight)
    prompts = [drafter.prompt("How is your day going?", e)[0] for e in drafter.emotions]
    assert drafter.generate(prompts) == ReplyDrafter(plain, tokenizer, max_new_tokens=8).generate(prompts)
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=["Fine, thanks."] * len(prompts), return_tensors="pt").input_ids
    with torch.inference_mode():
        torch.testing.assert_close(drafter.model(**enc, labels=labels).logits, plain(**enc, labels=labels).logits)


def test_a_quantised_output_layer_is_left_alone(tiny_model_dir):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", precision="int8", max_new_tokens=3)
    assert isinstance(drafter.model.lm_head, Int8Linear)
