"""Fixtures that build tiny models and data; the suite never reads ../shared or the network."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # many tiny ops: threads cost more than they give, and CI has 2 cores


def load_script(name: str):
    """Import a train/ script as a module (they are scripts, not a package)."""
    path = ROOT / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def face_rgb() -> np.ndarray:
    """A real photo with one face (scikit-image's astronaut, shipped in its wheel), (512, 512, 3)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def two_faces(face_rgb) -> np.ndarray:
    """The astronaut's head (300x300, face ~95 px) beside a 2/3-size copy: two faces, (300, 520, 3)."""
    head = face_rgb[0:300, 75:375]
    canvas = np.full((300, 520, 3), 200, np.uint8)
    canvas[:, :300] = head
    canvas[50:250, 310:510] = np.asarray(Image.fromarray(head).resize((200, 200)))
    return canvas


@pytest.fixture(scope="session")
def tiny_emotion_model_dir(tmp_path_factory) -> Path:
    """A small random emotion CNN saved with its processor, as from_pretrained expects."""
    from emoreply import EmotionCNNConfig, EmotionCNNForImageClassification, EmotionCNNImageProcessor

    folder = tmp_path_factory.mktemp("emotion-cnn")
    torch.manual_seed(0)
    EmotionCNNForImageClassification(EmotionCNNConfig(channels=[4, 8, 8], hidden_size=16)).save_pretrained(folder)
    EmotionCNNImageProcessor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def fer_folder(tmp_path_factory) -> Path:
    """FER-2013-shaped parquet files (train 140, test 35): 48x48 grayscale PNGs and labels 0..6."""
    import datasets

    folder = tmp_path_factory.mktemp("fer2013")
    rng = np.random.default_rng(0)
    for split, n in (("train", 140), ("test", 35)):
        labels = [i % 7 for i in range(n)]
        # Class-dependent brightness makes the task learnable, so metrics are not all chance.
        images = [
            Image.fromarray(np.clip(rng.normal(30 * c + 40, 20, (48, 48)), 0, 255).astype(np.uint8)) for c in labels
        ]
        ds = datasets.Dataset.from_dict({"image": images, "label": labels})
        ds.cast_column("image", datasets.Image()).to_parquet(str(folder / f"{split}.parquet"))
    return folder


# ---- reply drafter (tests/test_reply_*.py): tiny DailyDialog-style data, tokenizer and T5 ----

# A safety net for the reply tests: an accidental Hub call fails at once instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# DailyDialog-style text (spaces around punctuation, curly apostrophes) with a DailyDialog emotion id.
_LINES = [
    ("Hello , how are you ?", 0),
    ("I ’ m fine , thanks . And you ?", 0),
    ("That ’ s wonderful news ! I ’ m so happy for you !", 4),
    ("Great ! Let ' s celebrate tonight !", 4),
    ("I can ’ t believe you did that ! I ’ m furious .", 1),
    ("Stop shouting at me , it ’ s not my fault !", 1),
    ("Ugh , this food smells disgusting .", 2),
    ("I ’ m scared of the dark , it ’ s terrifying .", 3),
    ("My dog died yesterday . I feel so sad .", 5),
    ("I ’ m sorry to hear that .", 5),
    ("Really ? I didn ’ t expect that at all !", 6),
    ("Wow , what a surprise !", 6),
    ("Where is the station ?", 0),
    ("It ’ s two blocks away , next to the bank .", 0),
    ("Would you like some tea ?", 0),
    ("Yes , please . With milk , if you don ’ t mind .", 0),
]


def make_dialogues(n: int, seed: int) -> list[dict[str, list]]:
    """``n`` dialogues of 2-6 utterances drawn from the lines above (reproducible)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lines = [rng.choice(_LINES) for _ in range(rng.randint(2, 6))]
        out.append({"utterances": [t for t, _ in lines], "emotions": [e for _, e in lines]})
    return out


@pytest.fixture(scope="session")
def dailydialog_dir(tmp_path_factory) -> Path:
    """A DailyDialog-layout folder: train/validation/test.jsonl, tiny."""
    from emoreply.training.reply_data import write_jsonl

    folder = tmp_path_factory.mktemp("dailydialog")
    for split, n, seed in (("train", 40, 0), ("validation", 8, 1), ("test", 8, 2)):
        write_jsonl(make_dialogues(n, seed), folder / f"{split}.jsonl")
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer(dailydialog_dir):
    from emoreply.training.reply_data import load_pairs
    from emoreply.training.reply_tokenizer import train_tokenizer

    pairs = load_pairs(dailydialog_dir, "train")
    return train_tokenizer([*pairs["prompt"], *pairs["response"]], vocab_size=200)


TINY_T5 = {"d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random tiny T5 + the tiny tokenizer, saved like a trained reply model."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        **TINY_T5, vocab_size=len(tiny_tokenizer), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0
    )
    folder = tmp_path_factory.mktemp("tiny-reply-t5")
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


# ---- chat reply models (SmolLM2-like): a tiny random LLaMA with a chat template, and a LoRA adapter ----

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_LLAMA = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "tie_word_embeddings": True,
}


@pytest.fixture(scope="session")
def tiny_chat_tokenizer(dailydialog_dir):
    """The tiny tokenizer turned into a chat tokenizer: turn markers, end-of-turn as eos, a chat template."""
    from emoreply.training.reply_data import load_pairs
    from emoreply.training.reply_tokenizer import train_tokenizer

    pairs = load_pairs(dailydialog_dir, "train")
    tok = train_tokenizer([*pairs["context"], *pairs["response"], "Reply to the text message in a tone."], 200)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|im_end|>"
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def tiny_chat_dir(tmp_path_factory, tiny_chat_tokenizer) -> Path:
    """A random tiny LLaMA + chat tokenizer, saved like a pretrained chat model (the base of an adapter)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = tiny_chat_tokenizer
    config = LlamaConfig(
        **TINY_LLAMA, vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=1
    )
    folder = tmp_path_factory.mktemp("tiny-chat")
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory, tiny_chat_dir) -> Path:
    """A LoRA adapter (random, non-zero, so it changes the replies) on the tiny chat model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_dir)
    lora = LoraConfig(r=2, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    folder = tmp_path_factory.mktemp("tiny-adapter")
    get_peft_model(base, lora).save_pretrained(folder)
    return folder
