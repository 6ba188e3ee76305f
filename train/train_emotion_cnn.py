"""Train the emotion CNN on FER-2013.

    accelerate launch train/train_emotion_cnn.py --preset train/configs/emotion_cnn.json \
        --output_dir runs/emotion-cnn
    # N data-parallel processes, on CPUs (gloo) or GPUs (NCCL); --batch_size is per process
    accelerate launch --multi_gpu --num_processes 2 train/train_emotion_cnn.py --output_dir runs/emotion-cnn-2p
    python train/train_emotion_cnn.py --output_dir /tmp/smoke --max_train_samples 256 --num_epochs 1

Data stays in memory as uint8 (66 MB) and is augmented per batch; each epoch ends with a
validation pass (held out of train), a checkpoint (``--resume_from_checkpoint latest``) and, when
validation accuracy improves, the exported model in ``output_dir`` (config, safetensors,
preprocessor, Hub code). The run ends with the test report, plots and the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.optim.swa_utils import AveragedModel, update_bn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from emoreply.emotion_cnn import EMOTIONS, EmotionCNNConfig, EmotionCNNForImageClassification, EmotionCNNImageProcessor
from emoreply.training.cards import write_emotion_card
from emoreply.training.common import (
    TrainerState,
    add_common_args,
    check_output_dir,
    parse_with_preset,
    save_args,
    save_checkpoint,
    start_state,
)
from emoreply.training.data_sources import add_dataset_arg, check_dataset
from emoreply.training.distributed import map_sharded, process_seed, reduce_sums, start_processes
from emoreply.training.emotion_eval import TTA_VIEWS, predict, test_report
from emoreply.training.fer_data import augment, class_weights, load_fer_split, stratified_split
from emoreply.training.hub import preflight_hub_push, push_after_training
from emoreply.training.metrics import plot_curves

logger = logging.getLogger("train_emotion_cnn")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_dataset_arg(parser, "fer2013")
    parser.add_argument("--val_fraction", type=float, default=0.1, help="of train, per class, for early stopping")
    parser.add_argument("--batch_size", type=int, default=64, help="per process (global: x processes)")
    parser.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    parser.add_argument("--min_lr_ratio", type=float, default=0.01, help="cosine floor, as a fraction of the lr")
    parser.add_argument("--class_weighting", choices=["inverse", "sqrt_inverse", "none"], default="inverse")
    parser.add_argument("--gamma", type=float, default=0.0, help="focal loss gamma (0: cross-entropy)")
    parser.add_argument("--augment_strength", type=float, default=1.0, help="0 disables augmentation")
    parser.add_argument("--conv_dropout", type=float, default=0.25)
    parser.add_argument("--fc_dropout", type=float, default=0.5)
    parser.add_argument("--channels", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument(
        "--init_from", help="warm start: a saved model folder whose weights start a new schedule (same widths)"
    )
    parser.add_argument(
        "--swa_start_epoch",
        type=int,
        default=0,
        help="stochastic weight averaging: average the weights of every epoch from this one on (0: off)",
    )
    parser.add_argument("--optuna_trials", type=int, default=0, help="search lr, batch size, dropout first")
    parser.add_argument("--optuna_epochs", type=int, default=5, help="epochs per Optuna trial")
    return parse_with_preset(parser, argv)


def training_batch(
    images: torch.Tensor, processor: EmotionCNNImageProcessor, gen: torch.Generator, strength: float, device
) -> torch.Tensor:
    """(B, 1, 48, 48) uint8 faces -> normalised, augmented (unless strength is 0), channels_last on device."""
    x = processor.normalize_faces(images.cpu())
    if strength > 0:
        x = augment(x, gen, strength)
    return x.to(device, memory_format=torch.channels_last)  # the model's layout (see train())


def train(args: argparse.Namespace, data: dict, report_test: bool = True, trial=None) -> TrainerState:
    """One training run into ``args.output_dir``; returns its bookkeeping (history, best epoch)."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    train_x, train_y = data["train"]
    config = EmotionCNNConfig(
        channels=args.channels,
        hidden_size=args.hidden_size,
        conv_dropout=args.conv_dropout,
        fc_dropout=args.fc_dropout,
        focal_gamma=args.gamma,
        class_weights=class_weights(train_y, len(EMOTIONS), args.class_weighting),
    )
    # channels_last: oneDNN's CPU convolutions run faster in it (docs/benchmarks.md).
    model = EmotionCNNForImageClassification(config)
    if args.init_from:  # a new cosine cycle from trained weights (a warm restart) usually beats one long run
        model.load_state_dict(EmotionCNNForImageClassification.from_pretrained(args.init_from).state_dict())
    model = model.to(memory_format=torch.channels_last)
    processor = EmotionCNNImageProcessor()
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=args.learning_rate,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            nesterov=True,
        )
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=args.batch_size, shuffle=True, drop_last=True)
    steps = args.num_epochs * max(1, len(loader) // args.gradient_accumulation_steps)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, int(args.warmup_ratio * steps), steps, min_lr_rate=args.min_lr_ratio
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    # SWA: a running mean of the weights at each epoch's end; saved in checkpoints, so it resumes too.
    swa = AveragedModel(accelerator.unwrap_model(model)) if args.swa_start_epoch else None
    extra = {"swa": swa} if swa is not None else None

    state = start_state(accelerator, args, extra)
    if accelerator.is_main_process:
        save_args(args, output_dir)

    for epoch in range(state.epoch, args.num_epochs):
        if state.bad_epochs >= args.patience:
            break
        model.train()
        loader.set_epoch(epoch)
        # Seeded per epoch, so a run resumed from a checkpoint replays the same augmentations/dropout;
        # per process too, so that data-parallel processes do not draw identical augmentations.
        seed = process_seed(args.seed, accelerator.process_index)
        torch.manual_seed(seed + epoch)
        aug_gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{args.num_epochs}",
            disable=args.no_progress or not accelerator.is_local_main_process,
        )
        for images, labels in bar:
            with accelerator.accumulate(model):
                x = training_batch(images, processor, aug_gen, args.augment_strength, accelerator.device)
                loss = model(x, labels=labels).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            seen += len(labels)
            loss_sum += loss.item() * len(labels)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        seconds = time.perf_counter() - start
        loss_sum, seen = reduce_sums(accelerator, loss_sum, seen)  # over all processes' shards
        if swa is not None and epoch + 1 >= args.swa_start_epoch:
            swa.update_parameters(accelerator.unwrap_model(model))
        val_x, val_y = data["val"]
        preds = map_sharded(accelerator, lambda x: predict(accelerator.unwrap_model(model), processor, x), val_x)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "val_accuracy": (preds == val_y).float().mean().item() if len(val_y) else 0.0,
            "lr": scheduler.get_last_lr()[0],
            "epoch_seconds": seconds,
            "train_images": int(seen),
            "train_images_per_second": seen / seconds,
        }
        if state.update(metrics, "val_accuracy", greater_is_better=True) and accelerator.is_main_process:
            accelerator.unwrap_model(model).save_pretrained(output_dir)
            processor.save_pretrained(output_dir)
        save_checkpoint(accelerator, state, output_dir, keep=args.keep_checkpoints, extra=extra)
        accelerator.print(
            f"epoch {metrics['epoch']}: train_loss {metrics['train_loss']:.4f} "
            f"val_acc {metrics['val_accuracy']:.4f} ({seconds:.0f}s, {metrics['train_images_per_second']:.0f} img/s) "
            f"best {state.best_metric:.4f}@{state.best_epoch}"
        )
        if trial is not None:
            trial.report(metrics["val_accuracy"], epoch)
            if trial.should_prune():
                break

    if swa is not None and swa.n_averaged > 0:
        finish_weight_average(swa.module, loader, processor, data["val"], args, state, accelerator)
    if accelerator.is_main_process and state.history:
        (output_dir / "training_history.json").write_text(json.dumps(asdict(state), indent=1) + "\n")
        plot_curves(
            state.history,
            [["train_loss"], ["val_accuracy"]],
            output_dir / "training_curves.png",
            "Emotion CNN on FER-2013",
        )
        if report_test:
            best = EmotionCNNForImageClassification.from_pretrained(output_dir)
            results = test_report(best, processor, *data["test"], output_dir)
            write_emotion_card(output_dir)  # from the files just written beside the model
            accelerator.print(
                "test accuracy "
                + ", ".join(f"{results[view]['accuracy']:.4f} ({view})" for view in TTA_VIEWS)
                + f"; macro-F1 {results[results['default_view']]['macro_f1']:.4f} ({results['default_view']})"
            )
    accelerator.wait_for_everyone()
    if args.push_to_hub and report_test and accelerator.is_main_process and state.history:
        # Checked before training; a failure now exits saying the outputs are complete and how to push them.
        accelerator.print(f"pushed to {push_after_training(output_dir, args.hub_model_id, args.hub_token)}")
    return state


def finish_weight_average(
    averaged: EmotionCNNForImageClassification,
    loader: DataLoader,
    processor: EmotionCNNImageProcessor,
    val: tuple[torch.Tensor, torch.Tensor],
    args: argparse.Namespace,
    state: TrainerState,
    accelerator: Accelerator,
) -> None:
    """Recompute BatchNorm statistics for the averaged weights; export them if they beat the best epoch.

    The running statistics of the last epoch do not belong to the mean of the weights, so they are
    measured again on one pass over the (augmented, as in training) training images: every process
    on its shard, then the statistics averaged over processes.
    """
    device = next(averaged.parameters()).device
    aug_gen = torch.Generator().manual_seed(process_seed(args.seed, accelerator.process_index) * 1000 - 1)
    batches = (training_batch(images, processor, aug_gen, args.augment_strength, device) for images, _ in loader)
    update_bn(batches, averaged)
    if accelerator.num_processes > 1:
        for module in averaged.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(accelerator.reduce(module.running_mean, reduction="mean"))
                module.running_var.copy_(accelerator.reduce(module.running_var, reduction="mean"))
    if not accelerator.is_main_process:
        return
    val_x, val_y = val
    accuracy = (predict(averaged, processor, val_x) == val_y).float().mean().item() if len(val_y) else 0.0
    first = max(args.swa_start_epoch, 1)
    kept = state.best_metric is None or accuracy > state.best_metric
    state.averaged = {"first_epoch": first, "last_epoch": state.epoch, "val_accuracy": accuracy, "kept": kept}
    if kept:
        averaged.save_pretrained(args.output_dir)
        processor.save_pretrained(args.output_dir)
    logger.info(
        "weight average of epochs %d-%d: val_acc %.4f (best epoch %.4f): %s",
        first,
        state.epoch,
        accuracy,
        state.best_metric or 0.0,
        "exported" if kept else "not kept",
    )


def optuna_search(args: argparse.Namespace, data: dict) -> argparse.Namespace:
    """The paper tuned batch size, learning rate and dropout with Optuna; do the same on validation."""
    try:
        import optuna
    except ImportError as err:
        raise SystemExit("--optuna_trials needs optuna: pip install optuna") from err

    def objective(trial: optuna.Trial) -> float:
        trial_args = argparse.Namespace(**vars(args))
        trial_args.learning_rate = trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True)
        trial_args.batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
        trial_args.conv_dropout = trial.suggest_float("conv_dropout", 0.0, 0.4)
        trial_args.fc_dropout = trial.suggest_float("fc_dropout", 0.2, 0.6)
        trial_args.num_epochs, trial_args.resume_from_checkpoint = args.optuna_epochs, None
        trial_args.output_dir = str(Path(args.output_dir) / "optuna" / f"trial_{trial.number}")
        return train(trial_args, data, report_test=False, trial=trial).best_metric

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(objective, n_trials=args.optuna_trials)
    logger.info("optuna best %s: %s", study.best_value, study.best_params)
    return argparse.Namespace(**{**vars(args), **study.best_params})


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    state = start_processes()  # a real multi-process run, or a one-line refusal
    check_dataset(args.dataset, "fer2013")
    check_output_dir(args, state)
    if args.push_to_hub:  # seconds now, not a failure after training; checked once, the verdict shared
        args.hub_model_id = preflight_hub_push(args, state)
    train_x, train_y = load_fer_split(args.dataset, "train", args.max_train_samples)
    test = load_fer_split(args.dataset, "test", args.max_eval_samples)
    tr, va = stratified_split(train_y, args.val_fraction, args.seed)
    va = va[: args.max_eval_samples]
    data = {"train": (train_x[tr], train_y[tr]), "val": (train_x[va], train_y[va]), "test": test}
    if args.optuna_trials:
        args = optuna_search(args, data)
    train(args, data)


if __name__ == "__main__":
    main()
