"""LoRA fine-tuning with peft, in a plain loop driven by `accelerate`.

A plain loop keeps every number the stage reports (tokens/s per step, MFU, peak memory, the held-out loss
per epoch) in plain sight, and `accelerate` makes the same loop run on one CPU, one GPU, or many GPUs under
`accelerate launch --config_file deploy/accelerate/<setup>.yaml` (DDP, FSDP), with bf16 autocast and
gradient accumulation; distribution is never hand-rolled here.

Sequences are the serving prompt followed by the target answer and EOS; only the answer's tokens are
scored. Prompts arrive fitted to the model's input budget (train/data.py, as serving fits them); one is
cut from the left only where `max_seq_length` leaves its answer no room.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docs_assistant.config import FinetuneSettings, Settings
from docs_assistant.train.data import Example
from docs_assistant.train.throughput import mfu, peak_flops, peak_memory_mb

IGNORE = -100
#: optimizer steps left out of the steady-state tokens/s (allocator warm-up, kernel selection, compile)
WARMUP_STEPS = 2
Log = Callable[[dict[str, float]], None]


@dataclass
class TrainResult:
    adapter_dir: Path
    params: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)  # one per optimizer step
    heldout: list[dict[str, float]] = field(default_factory=list)  # {"step", "heldout_loss"} per epoch
    notes: dict[str, str] = field(default_factory=dict)
    main_process: bool = True


@dataclass(frozen=True)
class TokenRow:
    input_ids: list[int]
    labels: list[int]


def encode(tokenizer: Any, example: Example, max_input_tokens: int, max_seq_length: int) -> TokenRow:
    """Prompt (already fitted; left-cut only past the budget, as `LocalLLM.generate` does) + " answer" + EOS,
    answer tokens scored."""
    prompt_ids = tokenizer(example.prompt).input_ids
    target = [*tokenizer(" " + example.target.strip(), add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    target = target[: max_seq_length - 1]
    budget = max(1, min(max_input_tokens, max_seq_length - len(target)))
    prompt_ids = prompt_ids[-budget:]
    return TokenRow(prompt_ids + target, [IGNORE] * len(prompt_ids) + target)


def pack(sequences: list[TokenRow], max_len: int) -> list[TokenRow]:
    """First-fit packing of whole examples into sequences of at most `max_len` tokens (less padding).

    Packed examples attend to the ones before them in the same row (the plain packing most trainers
    do); answers stay scored only on their own tokens. Off by default: the tiny model's prompts fill a row.
    """
    bins: list[list[TokenRow]] = []
    room: list[int] = []
    for seq in sorted(sequences, key=lambda s: -len(s.input_ids)):
        for i, free in enumerate(room):
            if len(seq.input_ids) <= free:
                bins[i].append(seq)
                room[i] -= len(seq.input_ids)
                break
        else:
            bins.append([seq])
            room.append(max_len - len(seq.input_ids))
    return [TokenRow([t for s in b for t in s.input_ids], [t for s in b for t in s.labels]) for b in bins]


def collate(pad_id: int) -> Callable[[list[TokenRow]], dict[str, Any]]:
    def batch(items: list[TokenRow]) -> dict[str, Any]:
        import torch

        width = max(len(s.input_ids) for s in items)
        ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, s in enumerate(items):
            n = len(s.input_ids)
            ids[row, :n] = torch.tensor(s.input_ids)
            labels[row, :n] = torch.tensor(s.labels)
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return batch


def _flag(value: str, default: bool) -> bool:
    return default if value == "auto" else value == "on"


def _accelerator(ft: FinetuneSettings) -> Any:
    import torch
    from accelerate import Accelerator

    cuda = torch.cuda.is_available() and ft.device in ("auto", "cuda")
    bf16 = _flag(ft.bf16, cuda and torch.cuda.is_bf16_supported())
    return Accelerator(
        cpu=ft.device == "cpu" or (ft.device == "auto" and not cuda and not torch.backends.mps.is_available()),
        mixed_precision="bf16" if bf16 else "no",
        gradient_accumulation_steps=ft.gradient_accumulation_steps,
    )


def load_base(settings: Settings, *, bf16: bool) -> tuple[Any, Any, str, str | None]:
    """(model, tokenizer, name or path, revision): the same resolution the service uses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from docs_assistant.rag.llm import resolve_model_path

    path, revision = resolve_model_path(settings.model, settings.paths.models_dir)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        revision=revision,
        trust_remote_code=False,
        use_safetensors=True,
        dtype=torch.bfloat16 if bf16 else torch.float32,
        attn_implementation="sdpa",
    )
    return model, tokenizer, path, revision


def lora_config(ft: FinetuneSettings) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        r=ft.rank,
        lora_alpha=ft.alpha,
        lora_dropout=ft.dropout,
        target_modules=list(ft.target_modules),
        bias="none",
        task_type=TaskType.CAUSAL_LM,
    )


def train_lora(
    settings: Settings, train: Sequence[Example], heldout: Sequence[Example], out_dir: Path, *, log: Log | None = None
) -> TrainResult:
    """Train an adapter on `train`, score `heldout` before and after each epoch, save the adapter to `out_dir`."""
    import torch
    from accelerate.utils import set_seed
    from peft import get_peft_model
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    ft = settings.finetune
    log = log or (lambda _row: None)
    accelerator = _accelerator(ft)
    bf16 = accelerator.mixed_precision == "bf16"
    model, tokenizer, base, revision = load_base(settings, bf16=bf16)
    n_params = sum(p.numel() for p in model.parameters())
    checkpointing = _flag(ft.gradient_checkpointing, accelerator.device.type == "cuda")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    set_seed(ft.seed)  # after loading: building the tiny model on first use seeds torch with its own recipe
    model = get_peft_model(model, lora_config(ft))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    budget = settings.model.max_input_tokens
    sequences = [encode(tokenizer, e, budget, ft.max_seq_length) for e in train]
    if ft.packing:
        sequences = pack(sequences, ft.max_seq_length)
    held = [encode(tokenizer, e, budget, ft.max_seq_length) for e in heldout]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generator = torch.Generator().manual_seed(ft.seed)
    loader = DataLoader(sequences, batch_size=ft.batch_size, shuffle=True, collate_fn=collate(pad), generator=generator)
    held_loader = DataLoader(held, batch_size=ft.batch_size, collate_fn=collate(pad))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=ft.learning_rate,
        weight_decay=ft.weight_decay,
        fused=accelerator.device.type == "cuda",
    )
    steps_per_epoch = max(1, math.ceil(len(loader) / ft.gradient_accumulation_steps))
    total_steps = ft.max_steps or max(1, math.ceil(ft.epochs * steps_per_epoch))
    scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=int(ft.warmup_ratio * total_steps), num_training_steps=total_steps
    )
    model, optimizer, loader, held_loader, scheduler = accelerator.prepare(
        model, optimizer, loader, held_loader, scheduler
    )

    heldout_curve = [{"step": 0.0, "heldout_loss": heldout_loss(model, held_loader, accelerator)}]
    log(heldout_curve[0])
    history: list[dict[str, float]] = []
    step, epoch = 0, 0
    started = time.perf_counter()
    while step < total_steps:
        epoch += 1
        model.train()
        window_loss, window_tokens, t0 = 0.0, 0, time.perf_counter()
        for micro, batch in enumerate(loader, start=1):
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window_loss += float(loss.detach())
            window_tokens += int(accelerator.gather(batch["attention_mask"].sum()).sum())
            if accelerator.sync_gradients:
                step += 1
                if accelerator.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                row = {
                    "step": float(step),
                    "epoch": float(epoch),
                    "loss": window_loss / ((micro - 1) % ft.gradient_accumulation_steps + 1),
                    "lr": float(scheduler.get_last_lr()[0]),
                    "tokens": float(window_tokens),
                    "seconds": seconds,
                    "tokens_per_s": window_tokens / seconds if seconds > 0 else 0.0,
                }
                history.append(row)
                log(row)
                window_loss, window_tokens, t0 = 0.0, 0, time.perf_counter()
                if step >= total_steps:
                    break
        point = {"step": float(step), "heldout_loss": heldout_loss(model, held_loader, accelerator)}
        heldout_curve.append(point)
        log(point)
    wall = time.perf_counter() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(out_dir, safe_serialization=True)

    steady = [r["tokens_per_s"] for r in history[WARMUP_STEPS:]] or [r["tokens_per_s"] for r in history]
    tokens_per_s = statistics.median(steady)
    peak, peak_source = peak_flops(accelerator.device, "bf16" if bf16 else "fp32")
    memory, memory_source = peak_memory_mb(accelerator.device)
    metrics = {
        "train_loss_first": history[0]["loss"],
        "train_loss_last": history[-1]["loss"],
        "heldout_loss_base": heldout_curve[0]["heldout_loss"],
        "heldout_loss": heldout_curve[-1]["heldout_loss"],
        "tokens_per_s": tokens_per_s,
        "mfu": mfu(tokens_per_s, n_params, peak),
        "peak_memory_mb": memory,
        "train_seconds": wall,
        "steps": float(step),
        "trained_tokens": sum(r["tokens"] for r in history),
    }
    params = ft.model_dump(mode="json") | {
        "base_model": settings.model.name,
        "base_path": base,
        "base_revision": revision,
        "n_params": n_params,
        "trainable_params": trainable,
        "train_examples": len(train),
        "heldout_examples": len(heldout),
        "sequences": len(sequences),
        "total_steps": total_steps,
        "mixed_precision": accelerator.mixed_precision,
        "gradient_checkpointing_on": checkpointing,
        "device": str(accelerator.device),
        "processes": accelerator.num_processes,
    }
    notes = {"peak_flops": peak_source, "peak_memory": memory_source, "mfu_flops_per_token": "4N"}
    return TrainResult(out_dir, params, metrics, history, heldout_curve, notes, accelerator.is_main_process)


def heldout_loss(model: Any, loader: Any, accelerator: Any) -> float:
    """Mean loss per scored (answer) token over the held-out pairs, across all processes."""
    import torch

    model.eval()
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    with torch.inference_mode():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shift_logits, shift_labels = logits[:, :-1].float(), batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.shape[-1]),
                shift_labels.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
            total += torch.stack([loss.double(), (shift_labels != IGNORE).sum().double()])
    total = accelerator.reduce(total, reduction="sum")
    model.train()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")
