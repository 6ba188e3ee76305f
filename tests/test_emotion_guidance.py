"""Emotion guidance (classifier-free guidance toward the requested emotion) with a tiny random LLaMA."""

from __future__ import annotations

import json

import pytest
import torch

from emoreply.reply import ReplyDrafter, compare
from emoreply.reply.drafter import GUIDANCE_KEY, EmotionGuidance, save_decoding_settings, saved_emotion_guidance

from .test_reply_drafter import count_generate

SCALE = 1.5


@pytest.fixture(scope="module")
def guided(tiny_adapter_dir) -> ReplyDrafter:
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=6)
    drafter.emotion_guidance = SCALE
    return drafter


@torch.inference_mode()
def reference_greedy(drafter: ReplyDrafter, prompt: str, unguided: str, steps: int, ngram: int) -> list[int]:
    """Guided greedy decoding one token at a time with two separate, unbatched forward passes."""
    tok, model = drafter.tokenizer, drafter.model
    cond = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    free = tok(unguided, add_special_tokens=False, return_tensors="pt")["input_ids"]
    reply: list[int] = []
    for _ in range(steps):
        new = torch.tensor([reply], dtype=torch.long).reshape(1, -1)
        c = model(input_ids=torch.cat([cond, new], 1)).logits[0, -1].log_softmax(-1)
        u = model(input_ids=torch.cat([free, new], 1)).logits[0, -1].log_softmax(-1)
        scores = c + SCALE * (c - u)
        seq = cond[0].tolist() + reply  # no repeated n-gram, as generate's processor does on the guided row
        for i in range(len(seq) - ngram + 1) if ngram else []:
            if seq[i : i + ngram - 1] == seq[len(seq) - ngram + 1 :]:
                scores[seq[i + ngram - 1]] = -float("inf")
        token = int(scores.argmax())
        if token == tok.eos_token_id:
            break
        reply.append(token)
    return reply


def test_the_processor_adds_the_emotion_difference_and_gives_twins_the_same_scores():
    cond, plain, free = torch.randn(2, 5), torch.randn(1, 5), torch.randn(2, 5)
    cond[0, 3] = -float("inf")  # banned in a guided row (e.g. a repeated 3-gram): stays banned
    free[1, 4] = -float("inf")  # banned only in a twin: no evidence either way, that token is left alone
    out = EmotionGuidance(2.0, guided=2, plain=1)(torch.zeros(5, 1, dtype=torch.long), torch.cat([cond, plain, free]))
    c, u = cond.log_softmax(-1), free.log_softmax(-1)
    expected = c + 2.0 * (c - u)
    expected[0, 3], expected[1, 4] = -float("inf"), c[1, 4]
    torch.testing.assert_close(out[:2], expected)
    torch.testing.assert_close(out[3:], out[:2])  # twins pick what their guided row picks
    torch.testing.assert_close(out[2:3], plain)  # a plain row is untouched


def test_batched_guided_replies_match_an_unbatched_reference(guided):
    guided.no_repeat_ngram_size = 3
    message = "How is your day going?"
    texts = guided.sweep(message)
    for emotion in ("happy", "angry"):
        prompt = guided.prompt(message, emotion)[0]
        ids = reference_greedy(guided, prompt, guided.unguided_prompt(message, emotion), 6, 3)
        assert texts[emotion] == guided.tokenizer.decode(ids, skip_special_tokens=True).strip()


def test_guidance_changes_the_replies_and_costs_one_twin_per_emotion(guided, monkeypatch):
    plain = guided.base_drafter()
    assert plain.emotion_guidance == 0  # the base column is plain greedy decoding
    calls = count_generate(monkeypatch, guided.model)
    swept = guided.sweep("How is your day going?")
    assert calls[0]["input_ids"].shape[0] == 14 and calls[0]["logits_processor"] is not None
    guided.emotion_guidance = 0.0
    try:
        unguided = guided.sweep("How is your day going?")
    finally:
        guided.emotion_guidance = SCALE
    assert calls[1]["input_ids"].shape[0] == 7 and calls[1]["logits_processor"] is None
    assert swept != unguided
    assert guided.unguided_prompt("Hi", None) is None  # no emotion asked for: nothing to guide


def test_compare_guides_only_the_fine_tuned_row_in_one_call(guided, monkeypatch):
    base = guided.base_drafter()
    expected = (guided.draft("Hi there", "sad").text, base.draft("Hi there", "sad").text)
    calls = count_generate(monkeypatch, guided.model)
    result = compare(guided, base, "Hi there", "sad")
    assert len(calls) == 1 and calls[0]["adapter_names"] == ["default", "__base__", "default"]
    assert (result.fine_tuned.text, result.base) == expected


def test_sampling_runs_without_guidance(guided, monkeypatch):
    calls = count_generate(monkeypatch, guided.model)
    draft = guided.draft("Hi there", "happy", num_candidates=2, sampling=True)
    assert len(draft.candidates) == 2 and calls[0]["logits_processor"] is None


def test_the_scale_is_saved_with_the_decoding_settings(tiny_adapter_dir, tmp_path, guided):
    assert saved_emotion_guidance(tiny_adapter_dir) == 0.0  # no generation_config.json: off
    save_decoding_settings(tmp_path, guided.model, guided.tokenizer, emotion_guidance=SCALE)
    assert json.loads((tmp_path / "generation_config.json").read_text())[GUIDANCE_KEY] == SCALE
    assert saved_emotion_guidance(tmp_path) == SCALE
    with pytest.raises(ValueError, match="emotion_guidance"):
        ReplyDrafter(guided.model, guided.tokenizer, emotion_guidance=-1.0)
