"""LoRA training tokens/s and MFU on one GPU: stock transformers+peft vs the project's training choices.

Random-init Qwen2-architecture models built from config (Qwen2.5-0.5B and -7B shapes; nothing is
downloaded), LoRA r=16 on all linear layers, bf16 weights under bf16 autocast (what `accelerate` does on
one GPU), SDPA, the same seeded batches of random tokens for every variant. Variants, each toggling one
optimisation, so the JSON records what each contributes:

- `stock`: plain (foreach) AdamW, no gradient checkpointing, eager;
- `fused`: fused AdamW (as `train_lora` uses on CUDA), otherwise stock;
- `project`: fused AdamW + gradient checkpointing (`finetune.gradient_checkpointing = "auto"` on CUDA);
- `compiled`: fused AdamW + `torch.compile` of the model; `compiled_warm`: the same again, its compile
  served from `TORCHINDUCTOR_CACHE_DIR` (under the state dir, so the cost is also cached across runs).

Per variant: steady-state tokens/s (median and spread over the steps after warm-up), MFU at 4N FLOPs per
token against the data-sheet bf16 peak, peak memory, per-step losses (largest difference from stock), and
the compile seconds (first steps minus steady-state time). Results are written after every variant, so a
run cut short still leaves them. On a GPU machine: `python3 benchmarks/gpu_finetune.py --out $OUT`;
anywhere: `python benchmarks/gpu_finetune.py --dry-run` (a 2-layer model on CPU, 3 steps).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: before torch is imported: compiled kernels cached under the project's state dir, reused by later runs
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(ROOT / "var" / "torchinductor"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [str(ROOT), str(ROOT / "src")]  # the GPU image has torch, transformers and peft, not this package

KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
#: name: (Qwen2.5 config.json values in KEYS order, vocab size, tied embeddings, (batch, sequence length))
SHAPES: dict[str, tuple[tuple[int, ...], int, bool, tuple[int, int]]] = {
    "qwen2.5-7b": ((3584, 18944, 28, 28, 4), 152064, False, (4, 1024)),
    "qwen2.5-0.5b": ((896, 4864, 24, 14, 2), 151936, True, (8, 1024)),
}
DRY_SHAPE = ((64, 176, 2, 4, 2), 512, True, (2, 64))
SEED, LEARNING_RATE = 1234, 1e-4
COMMON = {"max_position_embeddings": 32768, "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6}
VARIANTS: dict[str, dict[str, bool]] = {
    "stock": {"fused": False, "checkpointing": False, "compile": False},
    "fused": {"fused": True, "checkpointing": False, "compile": False},
    "project": {"fused": True, "checkpointing": True, "compile": False},
    "compiled": {"fused": True, "checkpointing": False, "compile": True},
    "compiled_warm": {"fused": True, "checkpointing": False, "compile": True},
}


def lora() -> tuple[Any, str]:
    """The project's LoRA config at r=16; the same values written out where its settings cannot be imported
    (the GPU image has no pydantic)."""
    try:
        from docs_assistant.config import FinetuneSettings
        from docs_assistant.train.lora import lora_config

        return lora_config(FinetuneSettings(rank=16, alpha=32, dropout=0.0)), "docs_assistant.train.lora.lora_config"
    except ImportError:
        from peft import LoraConfig, TaskType

        modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        config = LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, target_modules=modules, bias="none", task_type=TaskType.CAUSAL_LM
        )
        return config, "written out (project settings not importable)"


def build_base(shape: tuple, device: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    sizes, vocab, tied, _batch = shape
    config = Qwen2Config(**COMMON, **dict(zip(KEYS, sizes, strict=True)), vocab_size=vocab, tie_word_embeddings=tied)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.config.use_cache = False
    return model.requires_grad_(False)


def batches(vocab: int, batch: tuple[int, int], count: int, device: Any) -> list[Any]:
    import torch

    generator = torch.Generator().manual_seed(1234)
    return [torch.randint(0, vocab, batch, generator=generator).to(device) for _ in range(count)]


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run_variant(base: Any, data: list[Any], flags: dict[str, bool], warmup: int, device: Any) -> dict[str, Any]:
    import torch
    from peft import get_peft_model

    config, _source = lora()
    torch._dynamo.reset()
    torch.manual_seed(SEED)
    if flags["checkpointing"]:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    model = get_peft_model(base, config)
    try:
        rows = train_steps(model, flags, data, LEARNING_RATE, device)
        memory = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    finally:  # the bare base model again, for the next variant, whatever happened
        restored = model.unload()
        if flags["checkpointing"]:
            restored.gradient_checkpointing_disable()
            restored.disable_input_require_grads()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    steady = rows[warmup:] or rows
    step_s = statistics.median(r["seconds"] for r in steady)
    return {
        "flags": flags,
        "tokens_per_s": summarize([r["tokens_per_s"] for r in steady]),
        "first_steps_s": round(sum(r["seconds"] for r in rows[:warmup]), 3),
        "compile_s": round(sum(r["seconds"] - step_s for r in rows[:warmup]), 3) if flags["compile"] else 0.0,
        "peak_memory_mb": memory and round(memory, 1),
        "losses": [round(r["loss"], 5) for r in rows],
    }


def train_steps(model: Any, flags: dict[str, bool], data: list[Any], lr: float, device: Any) -> list[dict[str, float]]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=flags["fused"])
    forward = torch.compile(model) if flags["compile"] else model
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rows: list[dict[str, float]] = []
    for ids in data:
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = forward(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())  # a sync, as the project's loop logs each step's loss
        sync(device)
        seconds = time.perf_counter() - t0
        rows.append({"loss": value, "seconds": seconds, "tokens_per_s": ids.numel() / seconds})
    return rows


def summarize(samples: list[float]) -> dict[str, float]:
    from benchmarks._stats import summarize as stats

    return dict(stats(samples))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "reports" / "bench"))
    parser.add_argument("--steps", type=int, default=30, help="measured steps per variant, after warm-up")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the steady state")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument(
        "--variants", help=f"comma-separated, of {', '.join(VARIANTS)} (default all; no compile on --dry-run)"
    )
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip the variants left after this long")
    parser.add_argument("--dry-run", action="store_true", help="a 2-layer model on CPU for 3 steps")
    args = parser.parse_args(argv)

    import peft
    import torch
    import transformers

    from docs_assistant.train.throughput import flops_per_token, peak_flops

    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    shapes = {"dry-run": DRY_SHAPE} if args.dry_run else {n: SHAPES[n] for n in args.shapes.split(",")}
    variants = (
        args.variants.split(",") if args.variants else [v for v in VARIANTS if not (args.dry_run and "compile" in v)]
    )
    steps, warmup = (3, 1) if args.dry_run else (args.steps + args.warmup, args.warmup)
    peak, peak_source = peak_flops(device, "bf16" if device.type == "cuda" else "fp32")
    report: dict[str, Any] = {
        "benchmark": "gpu_finetune",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "peak_flops": peak,
        "peak_source": peak_source,
        "mfu_flops_per_token": "4N",
        "lora": lora()[1],
        "inductor_cache_dir": os.environ["TORCHINDUCTOR_CACHE_DIR"],
        "steps": steps,
        "warmup": warmup,
        "shapes": {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_finetune.json"
    for name, shape in shapes.items():
        base = build_base(shape, device)
        n_params = sum(p.numel() for p in base.parameters())
        data = batches(base.config.vocab_size, shape[3], steps, device)
        entry: dict[str, Any] = {"n_params": n_params, "batch": shape[3], "variants": {}, "skipped": [], "failed": {}}
        report["shapes"][name] = entry
        for variant in variants:
            if time.perf_counter() - started > args.budget_s:
                entry["skipped"].append(variant)
                continue
            print(f"{name} {variant} ...", file=sys.stderr, flush=True)
            try:
                result = run_variant(base, data, VARIANTS[variant], warmup, device)
            except Exception as exc:  # e.g. out of memory: record it, measure the rest
                entry["failed"][variant] = repr(exc)[:2000]
                print(f"  failed: {exc!r}"[:500], file=sys.stderr, flush=True)
                continue
            rate = result["tokens_per_s"]["p50"]
            result["mfu"] = round(rate * flops_per_token(n_params) / peak, 4)
            if "stock" in entry["variants"]:
                stock = entry["variants"]["stock"]
                result["vs_stock"] = round(rate / stock["tokens_per_s"]["p50"], 3)
                result["max_abs_loss_diff_vs_stock"] = max(
                    abs(a - b) for a, b in zip(result["losses"], stock["losses"], strict=True)
                )
            entry["variants"][variant] = result
            print(f"  {rate:,.0f} tokens/s, MFU {result['mfu']:.1%}, vs stock {result.get('vs_stock', 1.0)}x")
            path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        del base, data
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
