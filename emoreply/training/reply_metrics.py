"""Reply metrics for training and evaluation: token loss / perplexity (padding excluded), distinct-n,
copy rate, and relevance from log p(reply | context)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..reply.copy_guard import is_copy, words


def token_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed cross-entropy (B,) and target-token count (B,); labels == -100 are ignored.

    Seq2seq batches come from ``DataCollatorForSeq2Seq``; causal-LM batches from ``reply_data.ChatCollator``,
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


def copy_rate(replies: Sequence[str], messages: Sequence[str]) -> float:
    """Fraction of replies that repeat their message (see :func:`is_copy`)."""
    return sum(is_copy(r, m) for r, m in zip(replies, messages, strict=True)) / max(len(replies), 1)


@torch.inference_mode()
def reply_logprobs(
    scorer: Any, tokenizer: Any, prompts: Sequence[str], replies: Sequence[Sequence[str]]
) -> torch.Tensor:
    """(len(prompts), R) summed log p(reply | prompt) under the causal LM ``scorer``; ``replies[i]`` are
    the R replies scored after prompt i (the end-of-turn token is not scored: only the words).

    The prompt is run once and its key/value cache shared by its R replies, which costs a third
    of scoring every (prompt, reply) sequence whole. An empty reply scores 0.
    """
    out = torch.zeros(len(prompts), len(replies[0]))
    for i, (prompt, row) in enumerate(zip(prompts, replies, strict=True)):
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(scorer.device)
        first = scorer(input_ids=ids, use_cache=True)
        reply_ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in row]
        width = max(1, max(len(r) for r in reply_ids))
        tokens = torch.zeros(len(row), width, dtype=torch.long)
        mask = torch.zeros(len(row), width, dtype=torch.long)
        for j, r in enumerate(reply_ids):
            tokens[j, : len(r)], mask[j, : len(r)] = torch.tensor(r, dtype=torch.long), 1
        cache = first.cache
        cache.batch_repeat_interleave(len(row))
        positions = torch.arange(ids.shape[1], ids.shape[1] + width).expand(len(row), -1)
        rest = scorer(
            input_ids=tokens.to(scorer.device),
            attention_mask=torch.cat([torch.ones(len(row), ids.shape[1], dtype=torch.long), mask], 1).to(scorer.device),
            position_ids=positions.to(scorer.device),
            cache=cache,
        ).logits  # (R, width, V): column k predicts token k + 1
        logits = torch.cat([first.logits[:, -1:].expand(len(row), -1, -1), rest[:, :-1]], 1).float()
        logp = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1).to(logits.device)).squeeze(-1).cpu()
        out[i] = (logp * mask).sum(1)
    return out


def relevance(scores: torch.Tensor, empty: Sequence[bool] | None = None) -> dict[str, float]:
    """Top-1 identification and PMI from an (N contexts x N replies) log p(reply | context) matrix.

    Reply j answers context j. Identification: context j is the most likely one for reply j.
    PMI_j = log p(r_j | c_j) - log mean_i p(r_j | c_i), in nats: how much more its own message
    explains the reply than an average message does (0 for a reply that fits any message, such as
    a stock phrase). An empty reply counts as unidentified with PMI 0.
    """
    n = scores.shape[0]
    own = scores.diagonal()
    hit = (scores.argmax(0) == torch.arange(n)).float()
    pmi = own - (torch.logsumexp(scores, 0) - math.log(n))
    if empty is not None:
        keep = ~torch.tensor(list(empty))
        hit, pmi = hit * keep, pmi * keep
    return {"top1": float(hit.mean()), "pmi": float(pmi.mean())}
