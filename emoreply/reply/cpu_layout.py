"""Linear weights stored transposed, the layout in which CPU decoding multiplies fastest.

``nn.Linear`` keeps its weight as (out_features, in_features) and computes ``x @ weight.T``. For
the few rows a decoding step has (one per reply), MKL multiplies by that transposed view markedly
slower than by a contiguous (in_features, out_features) matrix: 6.3 ms against 2.5 ms for
t5-small's (32128, 512) output layer at batch 1 (2 threads, torch 2.13); smaller layers gain less.
``bench/bench_reply.py`` measures what it does to a whole reply. For inference only: the
converted layers neither train nor save as ``nn.Linear`` weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TransposedLinear(nn.Module):
    """``nn.Linear``'s function with ``weight_t`` = weight.T stored contiguously; frozen (inference)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_t = nn.Parameter(linear.weight.detach().T.contiguous(), requires_grad=False)  # (in, out)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The (out, in) view that code written for ``nn.Linear`` reads (T5 checks its dtype)."""
        return self.weight_t.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        y = x @ self.weight_t
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def transpose_linears(model: Any) -> Any:
    """Replace every plain ``nn.Linear`` of ``model`` (in place) by a :class:`TransposedLinear`; returns it.

    Quantised or otherwise specialised linears are left alone (their type is not ``nn.Linear``). A
    tied output layer gets its own transposed copy, so the embedding keeps its row layout.
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, TransposedLinear(child))
    return model
