"""Run bookkeeping shared by the training scripts: presets, checkpoints, early stopping, the Hub."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the Hub helpers here need no torch
    import torch

STATE_FILE = "trainer_state.json"
logger = logging.getLogger(__name__)


def parse_with_preset(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse args where ``--preset FILE.json`` supplies defaults that explicit flags override."""
    pre, _ = parser.parse_known_args(argv)
    if getattr(pre, "preset", None):
        preset = json.loads(Path(pre.preset).read_text())
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(preset) - known)
        if unknown:
            parser.error(f"preset {pre.preset} has unknown keys: {', '.join(unknown)}")
        parser.set_defaults(**preset)
    return parser.parse_args(argv)


def save_args(args: argparse.Namespace, folder: str | Path) -> None:
    """The resolved arguments beside the model: what was really run."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "training_args.json").write_text(json.dumps(vars(args), indent=2, default=str) + "\n")


@dataclass
class TrainerState:
    """What a resumed run needs beyond the weights, optimizer and RNG (which save_state keeps)."""

    run_id: str = ""  # which run wrote a checkpoint, so that a run never prunes or resumes another's
    epoch: int = 0  # epochs completed
    best_metric: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best one, for early stopping
    history: list[dict[str, Any]] = field(default_factory=list)
    averaged: dict[str, Any] | None = None  # weight averaging (SWA) over epochs, when the run used it

    def update(self, metrics: dict[str, Any], key: str, greater_is_better: bool) -> bool:
        """Record one finished epoch; return True when it is the best so far."""
        self.epoch = metrics["epoch"]
        self.history.append(metrics)
        value = metrics[key]
        improved = self.best_metric is None or (
            value > self.best_metric if greater_is_better else value < self.best_metric
        )
        if improved:
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1
        return improved


def save_checkpoint(
    accelerator: Any,
    state: TrainerState,
    output_dir: str | Path,
    keep: int = 2,
    extra: dict[str, torch.nn.Module] | None = None,
) -> Path:
    """``accelerator.save_state`` + our state into checkpoints/epoch_N; keep this run's newest ``keep``.

    ``extra``: modules outside the training loop (the SWA average), saved as ``NAME.safetensors``
    rather than through ``register_for_checkpointing``, whose pickle accelerate loads with
    ``weights_only=False``.
    """
    from safetensors.torch import save_file

    folder = Path(output_dir) / "checkpoints" / f"epoch_{state.epoch}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        for name, module in (extra or {}).items():
            # channels_last weights are not contiguous, which safetensors refuses
            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, folder / f"{name}.safetensors")
        # Written last: a checkpoint without this file was interrupted and is never resumed from.
        (folder / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        # Only this run's: another run's higher epoch numbers must not count as newer.
        for old in [c for c in sorted_checkpoints(output_dir) if checkpoint_run(c) == state.run_id][:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def sorted_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folders = [p for p in (Path(output_dir) / "checkpoints").glob("epoch_*") if (p / STATE_FILE).exists()]
    return sorted(folders, key=lambda p: int(p.name.split("_")[1]))


def checkpoint_run(folder: Path) -> str:
    """The run id a complete checkpoint was written by ("" for checkpoints older than run ids)."""
    return json.loads((folder / STATE_FILE).read_text()).get("run_id", "")


def resolve_checkpoint(spec: str, output_dir: str | Path) -> Path | None:
    """``latest`` -> the newest complete checkpoint in output_dir (None if none); else a path."""
    if spec == "latest":
        found = sorted_checkpoints(output_dir)
        if len({checkpoint_run(c) for c in found}) > 1:  # epoch numbers of different runs say nothing about age
            raise SystemExit(
                f"{Path(output_dir) / 'checkpoints'} holds checkpoints of several runs; "
                "name the one to resume: --resume_from_checkpoint FOLDER"
            )
        return found[-1] if found else None
    path = Path(spec)
    if not (path / STATE_FILE).exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
    return path


def load_checkpoint(accelerator: Any, folder: Path, extra: dict[str, torch.nn.Module] | None = None) -> TrainerState:
    """Restore weights, optimizer, scheduler and RNG states (and ``extra``, see save_checkpoint);
    return our bookkeeping."""
    from safetensors.torch import load_file

    try:
        accelerator.load_state(str(folder))
        for name, module in (extra or {}).items():
            module.load_state_dict(load_file(folder / f"{name}.safetensors"))
    except Exception as err:  # a truncated file: say which checkpoint, not a deep stack trace
        raise RuntimeError(f"Checkpoint {folder} is corrupt or incomplete: {err}") from err
    return TrainerState(**json.loads((folder / STATE_FILE).read_text()))


def start_state(
    accelerator: Any, args: argparse.Namespace, extra: dict[str, torch.nn.Module] | None = None
) -> TrainerState:
    """The state of the checkpoint ``--resume_from_checkpoint`` names (loaded), or of a new run: a
    fresh run id, the same on every process."""
    if args.resume_from_checkpoint and (ckpt := resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)):
        state = load_checkpoint(accelerator, ckpt, extra)
        logger.info("resumed from %s after epoch %d", ckpt, state.epoch)
        return state
    run_id = [uuid.uuid4().hex[:12]]
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(run_id)
    return TrainerState(run_id=run_id[0])


def check_output_dir(args: argparse.Namespace, launch: Any) -> None:
    """Before anything is written: a new run into a folder holding another run's checkpoints stops with
    one line saying how to go on, or with ``--overwrite_output_dir`` removes that folder first.

    ``launch``: accelerate's PartialState; only the main process removes, and the others wait for it.
    """
    output_dir = Path(args.output_dir)
    holds_run = any((output_dir / "checkpoints").glob("epoch_*"))
    if holds_run and not args.resume_from_checkpoint:
        if not args.overwrite_output_dir:
            raise SystemExit(
                f"{output_dir} holds the checkpoints of another run: pass --resume_from_checkpoint latest to "
                "continue it, --overwrite_output_dir to delete it (checkpoints and exported model) and start "
                "over, or choose another --output_dir"
                if launch.is_main_process
                else 1
            )
        if launch.is_main_process:
            logger.info("--overwrite_output_dir: deleting %s", output_dir)
            shutil.rmtree(output_dir)
    launch.wait_for_everyone()  # nobody writes into the folder before it is gone


def push_folder_to_hub(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Create the model repo if needed and upload the exported folder (checkpoints excluded)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, exist_ok=True, private=private, repo_type="model")
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message="Upload emoreply model",
        ignore_patterns=["checkpoints/*", "*.pt", "*.bin", "*.pkl"],
    )
    return str(url)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags both training scripts take, with one meaning."""
    parser.add_argument("--preset", help="JSON file of argument defaults (train/configs/*.json)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_epochs", type=int, default=30)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--warmup_ratio", type=float, default=0.05, help="fraction of steps warming up")
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--patience", type=int, default=3, help="early stopping: epochs without improvement")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max_train_samples", type=int, help="smoke runs: cap the training set")
    parser.add_argument("--max_eval_samples", type=int, help="smoke runs: cap validation and test sets")
    parser.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest' in output_dir")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="output_dir holds another run's checkpoints: delete the folder and start a new run there",
    )
    parser.add_argument("--keep_checkpoints", type=int, default=2)
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id", help="user/name on the Hub (with --push_to_hub)")
    parser.add_argument("--hub_token")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars (logs stay)")
