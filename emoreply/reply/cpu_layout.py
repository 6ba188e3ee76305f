"""Linear layers that multiply a decoding step's few rows fast on CPU.

A decoding step sends one row per reply through every linear layer: 1 for a plain draft (the app's
base column), 3 for a guided one (the reply, its twin and its contextless row), 21 for a guided
sweep. For so few rows MKL computes ``nn.Linear``'s ``x @ weight.T`` well below the memory
bandwidth a decoding step is bound by, while the same product written ``weight @ x.T`` (the weight
as the left operand, as stored) runs up to 3.6× faster; and for a single row MKL's matrix-vector path
is slower than the matrix product of that row with itself, so one row goes through as two.

``FewRowsLinear`` is ``nn.Linear`` with that forward for up to ``FEW_ROWS`` rows. It keeps the
weight as loaded (no second copy, unlike storing it transposed), so a tied output layer still shares
the input embedding, and more rows (a prompt's prefill, a batched evaluation) take ``nn.Linear``'s
own path. The results differ from ``nn.Linear``'s only by float rounding. The measurements:
``python -m bench.bench_linear_rows`` and docs/benchmarks.md. For inference on CPU in fp32.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FEW_ROWS = 64  # measured (bench_linear_rows): faster up to here; at a prefill's hundreds of rows, slower


class FewRowsLinear(nn.Linear):
    """``nn.Linear`` computing ``(weight @ x.T).T`` when ``x`` holds at most ``FEW_ROWS`` rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        rows = x.numel() // self.in_features
        if not 0 < rows <= FEW_ROWS:
            return super().forward(x)
        flat = x.reshape(rows, self.in_features)  # (R, in)
        if rows == 1:  # one row as two: the matrix product beats MKL's matrix-vector one
            flat = flat.repeat(2, 1)
        y = (self.weight @ flat.T).T[:rows].contiguous()  # (R, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def use_few_rows_linears(model: Any) -> Any:
    """Make (in place) every fp32 ``nn.Linear`` of ``model`` a :class:`FewRowsLinear`; returns ``model``.

    Only the class changes: parameters, their names and ties stay. Quantised or bf16 layers are left
    alone (their products were not measured this way).
    """
    for module in model.modules():
        if type(module) is nn.Linear and module.weight.dtype == torch.float32:
            module.__class__ = FewRowsLinear
    return model
