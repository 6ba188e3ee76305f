"""FewRowsLinear: nn.Linear's function with a faster product for few rows, used by ReplyDrafter on CPU."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from emoreply.reply import ReplyDrafter
from emoreply.reply.cpu_layout import FEW_ROWS, FewRowsLinear, use_few_rows_linears


@pytest.mark.parametrize("rows", [0, 1, 3, FEW_ROWS, FEW_ROWS + 1])
@pytest.mark.parametrize("bias", [True, False])
def test_few_rows_linear_computes_what_nn_linear_does(rows, bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 5, bias=bias)
    fast = use_few_rows_linears(torch.nn.Sequential(torch.nn.Linear(6, 5, bias=bias)))[0]
    fast.load_state_dict(linear.state_dict())
    assert type(fast) is FewRowsLinear and isinstance(fast, torch.nn.Linear)
    for x in (torch.randn(rows, 6), torch.randn(1, rows, 6)):  # (R, in) and (B, T, in)
        y = fast(x)
        assert y.shape == linear(x).shape and y.is_contiguous()
        torch.testing.assert_close(y, linear(x))
    with torch.inference_mode():  # as the drafter calls it
        torch.testing.assert_close(fast(x), linear(x))


def test_the_conversion_keeps_parameters_ties_and_other_precisions(tiny_chat_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_dir, tie_word_embeddings=True)
    before = {name: p.data_ptr() for name, p in model.named_parameters()}
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    assert use_few_rows_linears(model) is model
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == before  # no copy, same names
    assert sum(type(m) is FewRowsLinear for m in model.modules()) == linears
    assert model.lm_head.weight is model.get_input_embeddings().weight  # the tie holds
    half = use_few_rows_linears(torch.nn.Sequential(torch.nn.Linear(4, 4).to(torch.bfloat16)))
    assert type(half[0]) is torch.nn.Linear  # bf16 products were not measured this way


def test_cpu_drafter_uses_few_rows_linears_and_drafts_the_same_replies(tiny_model_dir):
    plain = AutoModelForSeq2SeqLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=8)
    assert type(drafter.model.lm_head) is FewRowsLinear
    assert not any(type(m) is torch.nn.Linear for m in drafter.model.modules())
    prompts = [drafter.prompt("How is your day going?", e)[0] for e in drafter.emotions]
    reference = ReplyDrafter(plain, tokenizer, max_new_tokens=8)
    assert drafter.generate(prompts) == reference.generate(prompts)  # 7 rows a step
    assert drafter.generate(prompts[:1]) == reference.generate(prompts[:1])  # one row a step
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    labels = tokenizer(text_target=["Fine, thanks."] * len(prompts), return_tensors="pt").input_ids
    with torch.inference_mode():
        torch.testing.assert_close(drafter.model(**enc, labels=labels).logits, plain(**enc, labels=labels).logits)


def test_a_quantised_output_layer_is_left_alone(tiny_model_dir):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    drafter = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", precision="int8", max_new_tokens=3)
    assert isinstance(drafter.model.lm_head, Int8Linear)
