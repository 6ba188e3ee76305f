"""The project tokenizer: T5 special ids, eos on encode, save/load round trip."""

from __future__ import annotations

from transformers import AutoTokenizer

from emoreply.reply.prompt import build_prompt
from emoreply.training.reply_tokenizer import train_tokenizer


def test_trained_tokenizer_round_trips(tiny_tokenizer, tmp_path):
    tok = tiny_tokenizer
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    prompt = build_prompt("Hello, how are you?", "happy")
    ids = tok(prompt)["input_ids"]
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids  # prompt punctuation is in the alphabet
    assert tok.decode(ids, skip_special_tokens=True) == prompt
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(prompt)["input_ids"] == ids
    assert (again.pad_token_id, again.eos_token_id) == (0, 1)
    assert again.decode(again("I'm fine 😀")["input_ids"], skip_special_tokens=True).startswith("I'm fine")


def test_vocab_size_is_respected():
    texts = [f"word{i} and some shared text number {i}" for i in range(300)]
    assert len(train_tokenizer(texts, vocab_size=150)) <= 150
