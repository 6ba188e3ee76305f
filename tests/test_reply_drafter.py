"""ReplyDrafter with a tiny random T5: prompts, draft/sweep/compare, validation and loading errors."""

from __future__ import annotations

import shutil

import pytest
import torch

from emoreply.emotion_cnn import EMOTIONS
from emoreply.loading import ModelLoadError
from emoreply.reply import Comparison, Draft, ReplyDrafter, build_prompt, compare, with_precision
from emoreply.training.reply_data import dialogues_to_pairs


@pytest.fixture(scope="module")
def drafter(tiny_model_dir) -> ReplyDrafter:
    return ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=5)


@pytest.fixture(scope="module")
def base(drafter, tiny_model_dir) -> ReplyDrafter:
    # The "base" is another copy of the tiny model: compare() needs something loadable offline.
    return drafter.base_drafter(str(tiny_model_dir))


def count_generate(monkeypatch, model) -> list[dict]:
    """Wrap model.generate to record each call's inputs (and still generate)."""
    calls: list[dict] = []
    original = model.generate

    def wrapped(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", wrapped)
    return calls


def test_drafter_feeds_the_training_prompt(drafter, monkeypatch):
    # The string and token ids the model reads at inference are those it was trained on.
    cols = dialogues_to_pairs([{"utterances": ["Hello , how are you ?", "Great !"], "emotions": [0, 4]}])
    prompt, truncated = drafter.prompt("Hello , how are you ?", "happy")
    assert prompt == cols["prompt"][0] == build_prompt("Hello, how are you?", "happy") and not truncated
    calls = count_generate(monkeypatch, drafter.model)
    drafter.draft("Hello , how are you ?", "HAPPY")
    assert calls[0]["input_ids"][0].tolist() == drafter.tokenizer(cols["prompt"][0])["input_ids"]


def test_draft_greedy_beams_and_sampling(drafter):
    draft = drafter.draft("How is your day going?", "happy")
    assert isinstance(draft, Draft) and isinstance(draft.text, str)
    assert draft.emotion == "happy" and not draft.truncated and draft.candidates == (draft.text,)
    assert drafter.draft("How is your day going?", "happy").text == draft.text  # greedy is deterministic
    beams = drafter.draft("How is your day going?", "sad", num_candidates=3)
    assert len(beams.candidates) == 3 and beams.text == beams.candidates[0]
    assert len(drafter.draft("Hi", "fear", num_candidates=2, sampling=True).candidates) == 2
    assert drafter.draft("Hi", None).emotion is None  # the no-emotion prompt


def test_a_draft_that_repeats_the_message_is_replaced_by_a_beam_that_does_not(drafter, monkeypatch):
    tok = drafter.tokenizer
    echo, fresh = (tok.decode(tok(t)["input_ids"], skip_special_tokens=True) for t in ("thank you", "you are welcome"))
    calls: list[dict] = []

    def fake_generate(**kwargs):  # greedy echoes the message; the guard's 4 beams start with the echo too
        calls.append(kwargs)
        beams = [echo] if kwargs["num_return_sequences"] == 1 else [echo, fresh, fresh, echo]
        texts = beams * len(kwargs["input_ids"])
        return tok(texts, padding=True, return_tensors="pt")["input_ids"]

    monkeypatch.setattr(drafter.model, "generate", fake_generate)
    draft = drafter.draft(echo, "happy")
    assert draft.text == fresh and [c["num_beams"] for c in calls] == [1, 4]
    assert drafter.sweep(echo)["sad"] == fresh  # every path that knows the message is guarded
    calls.clear()
    assert drafter.generate([build_prompt(echo, "happy")])[0] == [echo]  # no messages given: no guard
    monkeypatch.setattr(drafter, "avoid_copies", False)
    assert drafter.draft(echo, "happy").text == echo and len(calls) == 2  # guard off: one call, the echo


def test_greedy_drafts_never_repeat_a_trigram(drafter, monkeypatch):
    calls = count_generate(monkeypatch, drafter.model)
    drafter.generate([build_prompt("Hi", "sad")], max_new_tokens=40)
    assert calls[-1]["no_repeat_ngram_size"] == 3 and calls[-1]["do_sample"] is False
    ids = drafter.model.generate(**calls[-1])[0].tolist()  # the same call, to see its token ids
    trigrams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
    assert len(trigrams) == len(set(trigrams))
    monkeypatch.setattr(drafter, "no_repeat_ngram_size", 0)  # 0 switches the constraint off
    drafter.draft("Hi", "sad")
    assert calls[-1]["no_repeat_ngram_size"] == 0


def test_history_is_used_and_fitted(drafter):
    prompt, _ = drafter.prompt("And you?", "happy", ["Hi!", "I ’ m fine ."])
    assert prompt == 'emotion: happy | context: "Hi!" | "I\'m fine." | "And you?"'
    long_history = ["word " * 100, "Hi!"]
    prompt, truncated = drafter.prompt("And you?", "happy", long_history)
    assert prompt == 'emotion: happy | context: "Hi!" | "And you?"' and not truncated


def test_sweep_is_one_generate_call(drafter, monkeypatch):
    calls = count_generate(monkeypatch, drafter.model)
    replies = drafter.sweep("How is your day going?", history=["Hi!"])
    assert list(replies) == list(EMOTIONS) and all(isinstance(r, str) for r in replies.values())
    assert len(calls) == 1 and calls[0]["input_ids"].shape[0] == 7


def test_compare_uses_the_same_prompt(drafter, base, monkeypatch):
    calls = count_generate(monkeypatch, base.model)
    result = compare(drafter, base, "How is your day going?", "surprise")
    assert isinstance(result, Comparison) and result.base_error is None and isinstance(result.base, str)
    assert result.fine_tuned.emotion == "surprise" and base.model is not drafter.model
    expected = base.tokenizer(build_prompt("How is your day going?", "surprise"))["input_ids"]
    assert calls[0]["input_ids"][0].tolist() == expected


def test_compare_matches_the_two_drafts(drafter, base):
    result = compare(drafter, base, "How is your day going?", "sad", ["Hi!"])
    assert result.fine_tuned.text == drafter.draft("How is your day going?", "sad", ["Hi!"]).text
    assert result.base == base.draft("How is your day going?", "sad", ["Hi!"]).text


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_lower_precision_converts_both_models_and_still_drafts(tiny_model_dir, precision):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    fp32 = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", max_new_tokens=5)
    low = ReplyDrafter.from_pretrained(tiny_model_dir, device="cpu", precision=precision, max_new_tokens=5)
    low_base = low.base_drafter(str(tiny_model_dir))  # the base follows the fine-tuned model's precision
    for model in (low.model, low_base.model):
        if precision == "int8":
            assert not any(type(m) is torch.nn.Linear for m in model.modules())
            assert sum(isinstance(m, Int8Linear) for m in model.modules()) > 0
        else:
            assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert isinstance(compare(low, low_base, "How is your day going?", "happy").base, str)
    enc = fp32.tokenizer(['emotion: happy | context: "Hi"'], return_tensors="pt")
    labels = fp32.tokenizer(text_target=["Hello there"], return_tensors="pt").input_ids
    with torch.inference_mode():
        a, b = (d.model(**enc, labels=labels).logits.float().flatten() for d in (fp32, low))
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99  # close to, not equal to, fp32


def test_with_precision_leaves_the_given_model_alone_and_refuses_unknown_names(drafter):
    before = {p.dtype for p in drafter.model.parameters()}
    assert with_precision(drafter.model, "fp32") is drafter.model
    assert {p.dtype for p in with_precision(drafter.model, "bf16").parameters()} == {torch.bfloat16}
    assert {p.dtype for p in drafter.model.parameters()} == before == {torch.float32}
    with pytest.raises(ValueError, match="choose one of: fp32, bf16, int8"):
        with_precision(drafter.model, "fp16")
    with pytest.raises(ValueError, match="'float16'"):
        ReplyDrafter.from_pretrained("/nonexistent", precision="float16")  # refused before loading


def test_an_unavailable_base_model_is_a_clear_error(drafter, tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="no-base"):
        drafter.base_drafter(str(tmp_path / "no-base"))
    # A T5 with no base named falls back to the paper's t5-small (here a missing folder, not the Hub).
    monkeypatch.setattr("emoreply.reply.drafter.DEFAULT_BASE_MODEL_ID", str(tmp_path / "no-t5-small"))
    with pytest.raises(ModelLoadError, match="no-t5-small"):
        drafter.base_drafter()


@pytest.mark.parametrize("message", ["", "   \n "])
def test_empty_message(drafter, message):
    with pytest.raises(ValueError, match="empty"):
        drafter.draft(message, "happy")


def test_long_message_is_truncated_and_reported(drafter):
    draft = drafter.draft("blah " * 4000, "sad")  # 20,000 characters
    assert draft.truncated
    # Within the character budget but over 50 tokens: also reported.
    assert drafter.draft("a b c d e f g h i j " * 10, "sad").truncated


def test_emoji_and_non_latin_text(drafter):
    prompt, truncated = drafter.prompt("Happy birthday 🎉🎂 誕生日おめでとう", "happy")
    assert "🎉🎂 誕生日おめでとう" in prompt and not truncated
    assert isinstance(drafter.draft("Привет 😀", "happy").text, str)


def test_unknown_emotion_lists_valid_ones(drafter):
    with pytest.raises(ValueError, match="valid emotions are: angry, disgust, fear, happy, sad, surprise, neutral"):
        drafter.draft("Hi", "joyful")


def test_missing_and_corrupt_model_folders(tiny_model_dir, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match=str(missing)):
        ReplyDrafter.from_pretrained(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=f"{empty}.*config.json"):
        ReplyDrafter.from_pretrained(empty)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # not "install sentencepiece": the file, by name
        partial = tmp_path / f"no-{name}"
        shutil.copytree(tiny_model_dir, partial)
        (partial / name).unlink()
        with pytest.raises(ModelLoadError, match=f"{partial} is incomplete: missing {name}$"):
            ReplyDrafter.from_pretrained(partial)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not really weights")
    with pytest.raises(ModelLoadError, match=str(corrupt)):
        ReplyDrafter.from_pretrained(corrupt)


def test_bundled_reply_models_carry_the_apps_decoding_settings():
    import json

    from emoreply.reply import REPLY_MODELS

    for folder, _ in REPLY_MODELS.values():
        config = json.loads((folder / "generation_config.json").read_text())
        assert config["no_repeat_ngram_size"] == 3 and config["max_new_tokens"] == 20, folder
        assert config["do_sample"] is False and config["num_beams"] == 1, folder
