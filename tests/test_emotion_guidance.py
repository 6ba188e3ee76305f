"""Emotion guidance (classifier-free guidance toward the requested emotion), context contrast and the
plausibility floor, with a tiny random LLaMA."""

from __future__ import annotations

import json
import math

import pytest
import torch

from emoreply.reply import ReplyDrafter, compare
from emoreply.reply.drafter import GUIDANCE_KEYS, EmotionGuidance, Guide, save_decoding_settings, saved_guidance

from .test_reply_drafter import count_generate

SCALE = 1.5


@pytest.fixture(scope="module")
def guided(tiny_adapter_dir) -> ReplyDrafter:
    drafter = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=6)
    drafter.emotion_guidance = SCALE
    return drafter


@torch.inference_mode()
def reference_greedy(drafter: ReplyDrafter, prompt: str, guide: Guide, steps: int, ngram: int) -> list[int]:
    """Guided greedy decoding one token at a time with separate, unbatched forward passes."""
    tok, model = drafter.tokenizer, drafter.model
    cond, free, *null = (
        tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"] for text in (prompt, *filter(None, guide))
    )
    reply: list[int] = []
    for _ in range(steps):
        new = torch.tensor([reply], dtype=torch.long).reshape(1, -1)
        c, u, *z = (model(input_ids=torch.cat([i, new], 1)).logits[0, -1].log_softmax(-1) for i in (cond, free, *null))
        seq = cond[0].tolist() + reply  # no repeated n-gram, as generate's processor does on the guided row
        for i in range(len(seq) - ngram + 1) if ngram else []:
            if seq[i : i + ngram - 1] == seq[len(seq) - ngram + 1 :]:
                c[seq[i + ngram - 1]] = -float("inf")
        scores = c + drafter.emotion_guidance * (c - u) + (drafter.context_contrast * (c - z[0]) if z else 0)
        if drafter.plausibility:
            scores[c < c.max() + math.log(drafter.plausibility)] = -float("inf")
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
        ids = reference_greedy(guided, prompt, guided.guide(message, emotion), 6, 3)
        assert texts[emotion] == guided.tokenizer.decode(ids, skip_special_tokens=True).strip()


def test_the_processor_subtracts_the_contextless_row_and_keeps_only_plausible_tokens():
    cond, free, null = torch.randn(1, 6), torch.randn(1, 6), torch.randn(1, 6)
    cond[0, :2] = torch.tensor([5.0, -5.0])  # token 0 most likely; token 1 far below a tenth of it
    guidance = EmotionGuidance(1.0, guided=1, plain=0, context_scale=0.5, plausibility=0.1)
    out = guidance(torch.zeros(3, 1, dtype=torch.long), torch.cat([cond, free, null]))
    c, u, z = (x.log_softmax(-1) for x in (cond, free, null))
    expected = c + 1.0 * (c - u) + 0.5 * (c - z)
    expected[c < c.max() + math.log(0.1)] = -float("inf")
    torch.testing.assert_close(out[:1], expected)
    assert out[0, 1] == -float("inf") and torch.isfinite(out[0, 0])
    torch.testing.assert_close(out[1:], out[:1].expand(2, -1))  # both contrast rows stay in step


def test_context_contrast_adds_one_contextless_row_per_reply_and_matches_the_reference(guided, monkeypatch):
    guided.context_contrast, guided.plausibility = 0.5, 0.05
    try:
        guide = guided.guide("How is your day going?", "sad")
        assert guide.contextless is not None and "How is your day" not in guide.contextless
        assert guide.contextless != guided.prompt("Hi", "sad")[0]  # no message at all, not another one
        calls = count_generate(monkeypatch, guided.model)
        texts = guided.sweep("How is your day going?")
        assert calls[0]["input_ids"].shape[0] == 21
        for emotion in ("sad", "surprise"):
            prompt = guided.prompt("How is your day going?", emotion)[0]
            ids = reference_greedy(guided, prompt, guided.guide("How is your day going?", emotion), 6, 3)
            assert texts[emotion] == guided.tokenizer.decode(ids, skip_special_tokens=True).strip()
        beams = guided.generate([prompt], 3, guides=[guided.guide("How is your day going?", "sad")])[0]
        assert len(beams) == 3  # beam search (the copy guard's fallback) keeps the three row groups in step
    finally:
        guided.context_contrast, guided.plausibility = 0.0, 0.0


def test_guidance_changes_the_replies_and_costs_one_twin_per_emotion(guided, monkeypatch):
    plain = guided.base_drafter()
    assert plain.emotion_guidance == 0  # the base column is plain greedy decoding
    calls = count_generate(monkeypatch, guided.model)
    swept = guided.sweep("How is your day going?")
    assert calls[0]["input_ids"].shape[0] == 14 and calls[0]["logits_processor"] is not None
    guided.emotion_guidance = 0.0
    try:
        guides = guided.sweep("How is your day going?")
    finally:
        guided.emotion_guidance = SCALE
    assert calls[1]["input_ids"].shape[0] == 7 and calls[1]["logits_processor"] is None
    assert swept != guides
    assert guided.guide("Hi", None) is None  # no emotion asked for: nothing to guide


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


def test_the_guidance_settings_are_saved_with_the_decoding_settings(tiny_adapter_dir, tmp_path, guided):
    assert saved_guidance(tiny_adapter_dir) == dict.fromkeys(GUIDANCE_KEYS, 0.0)  # no generation_config.json: off
    settings = {"emotion_guidance": SCALE, "context_contrast": 0.5, "plausibility": 0.1}
    save_decoding_settings(tmp_path, guided.model, guided.tokenizer, **settings)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert {key: saved[key] for key in GUIDANCE_KEYS} == settings == saved_guidance(tmp_path)
    loaded = ReplyDrafter(guided.model, guided.tokenizer, **saved_guidance(tmp_path))
    assert (loaded.emotion_guidance, loaded.context_contrast, loaded.plausibility) == (SCALE, 0.5, 0.1)
    with pytest.raises(ValueError, match="Unknown guidance settings"):
        save_decoding_settings(tmp_path, guided.model, guided.tokenizer, guidance=1.0)
    with pytest.raises(ValueError, match="emotion_guidance"):
        ReplyDrafter(guided.model, guided.tokenizer, emotion_guidance=-1.0)
    with pytest.raises(ValueError, match="plausibility must be >= 0 \\(0: off\\) and < 1"):
        ReplyDrafter(guided.model, guided.tokenizer, plausibility=1.0)


def test_tune_guidance_tables_each_setting_on_validation_openings(tiny_adapter_dir, dailydialog_dir, tmp_path):
    from emoreply.training.judge import EmotionJudge
    from emoreply.training.reply_data import load_pairs

    from .conftest import load_script

    pairs = load_pairs(dailydialog_dir, "train")
    EmotionJudge.fit(pairs["response"], pairs["emotion"], min_df=1).save(tmp_path / "judge")
    script = load_script("train/tune_guidance.py")
    argv = ["--model", str(tiny_adapter_dir), "--judge", str(tmp_path / "judge"), "--dataset", str(dailydialog_dir)]
    settings = ["--settings", "0,0,0", "1.5,0.5,0.1", "--skip_dialogues", "2", "--num_dialogues", "3"]
    out = script.main([*argv, *settings, "--output", str(tmp_path / "drafts.json")])
    assert "3 validation openings (dialogues 2-4) x 7 emotions" in out
    assert "| 0, 0, 0 |" in out and "| 1.5, 0.5, 0.1 |" in out
    drafts = json.loads((tmp_path / "drafts.json").read_text())
    assert [len(v) for v in drafts.values()] == [21, 21] and drafts["0, 0, 0"] != drafts["1.5, 0.5, 0.1"]
    with pytest.raises(SystemExit):
        script.parse_args(["--judge", "j", "--settings", "1,0.5"])
