"""Reply metrics: token loss / perplexity (padding excluded), distinct-n, copy rate."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

COPY_OVERLAP = 0.8  # a reply whose words are >= 80% the message's words repeats it
COPY_MIN_WORDS = 3  # shorter replies ("Yes.", "OK.") count as copies only when identical
_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (the unit of distinct-n)."""
    return _WORD.findall(text.lower())


def token_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed cross-entropy (B,) and target-token count (B,); labels == -100 are ignored.

    Seq2seq batches come from ``DataCollatorForSeq2Seq``; causal-LM batches from ``data.ChatCollator``,
    where every response starts at one column P: logits are computed only for the columns that
    predict response tokens (``logits_to_keep``), not for the prompt.
    """
    labels = batch["labels"]
    if model.config.is_encoder_decoder:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
    else:
        start = int((labels != -100).any(0).nonzero()[0])  # P: the first response column
        keep = torch.arange(start - 1, labels.shape[1] - 1, device=labels.device)  # columns predicting P..end
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch.get("position_ids"),
            logits_to_keep=keep,
        ).logits  # (B, T - P, V)
        labels = labels[:, start:]
    nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")  # (B, T)
    return nll.sum(1), (labels != -100).sum(1)


def perplexity_report(loss_sum: float, n_tokens: int) -> dict[str, float]:
    """Mean token loss and its perplexity (exp), with the token count behind them."""
    loss = loss_sum / max(n_tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": int(n_tokens)}


@torch.inference_mode()
def corpus_loss(model: Any, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Token-weighted loss and perplexity over all batches (the model in eval mode, no accelerate)."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = {k: v.to(model.device) for k, v in batch.items()}
        loss, n = token_losses(model, batch)
        total, count = total + loss.sum().item(), count + int(n.sum())
    return perplexity_report(total, count)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over the whole set of replies (0 when there are none)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        toks = words(text)
        grams.update(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def is_copy(reply: str, message: str) -> bool:
    """True when the reply repeats the message.

    Both are reduced to lower-case words without punctuation. A copy is either identical, or a reply
    of at least ``COPY_MIN_WORDS`` words of which >= ``COPY_OVERLAP`` (counted with multiplicity)
    also occur in the message.
    """
    r = [w for w in words(reply) if w[0].isalnum() or w[0] == "_"]
    m = [w for w in words(message) if w[0].isalnum() or w[0] == "_"]
    if not r:
        return False
    if r == m:
        return True
    if len(r) < COPY_MIN_WORDS:
        return False
    overlap = sum((Counter(r) & Counter(m)).values())
    return overlap / len(r) >= COPY_OVERLAP


def copy_rate(replies: Sequence[str], messages: Sequence[str]) -> float:
    """Fraction of replies that repeat their message (see :func:`is_copy`)."""
    return sum(is_copy(r, m) for r, m in zip(replies, messages, strict=True)) / max(len(replies), 1)
