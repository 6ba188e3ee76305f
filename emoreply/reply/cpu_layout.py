"""The output layer's weight stored transposed, the layout in which CPU decoding multiplies fastest.

``nn.Linear`` keeps its weight as (out_features, in_features) and computes ``x @ weight.T``. For
the few rows a decoding step has (one per reply), MKL multiplies by that transposed view markedly
slower than by a contiguous (in_features, out_features) matrix, and the vocabulary-wide output
layer is where that matters. The narrower layers gain far less, and converting them too would keep
two copies of every weight resident (the memory-mapped checkpoint and the transposed copy), so only
the output layer is converted. The measurements: docs/benchmarks.md ("Transposed output layer"),
``bench/bench_output_layer.py``. For inference only: it neither trains nor saves.
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


def transpose_output_layer(model: Any) -> Any:
    """Give ``model`` (in place) a :class:`TransposedLinear` output layer; returns it.

    A quantised or otherwise specialised output layer is left alone (its type is not ``nn.Linear``).
    A tied output layer gets its own transposed copy, so the input embedding keeps its row layout.
    """
    head = model.get_output_embeddings()
    if type(head) is nn.Linear:
        model.set_output_embeddings(TransposedLinear(head))
    return model
