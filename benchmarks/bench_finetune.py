"""Fine-tuning speed on CPU: the project's `train_lora` against stock `transformers.Trainer` + peft.

Both sides train the tiny default model on the same tokenized sequences (the project's `encode` and
`collate`, the sample QA train split rendered with the serving prompt and retrieval), with the same LoRA
config, steps, batch size, learning rate, schedule, seed and SDPA attention, alternating order per round.
The stock side sees the batches in the order the project's seeded loader draws them (sequential sampler
over that order), so per-step losses are comparable: their largest difference and both final held-out
losses are reported. Reported: steady-state tokens/s (per-step, after `WARMUP_STEPS`), MFU at 4N FLOPs
per token against this CPU's measured matmul peak, and the ratio project/stock. The 1.5x target of the
issue applies to the 7B shape on a GPU (`benchmarks/gpu_finetune.py`); here the ratio is reported.

Each round also times the chain to fine-tuning end to end (`nox -x -s validate_data index eval_prompts
finetune`, cold state; no session requires another) in a
scratch copy of the repository with reused session venvs when `BENCH_FINETUNE_NOX=1`; the very first
run, which creates the venvs, is noted. Target: under 180 s on the tiny default model. Without the flag
there is no target to miss: the ratio is reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._project import ROOT, clean_env, scratch_project
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "finetune"
DEFAULT_REPEAT = 2
MAX_STEPS = 10
#: a multiple of the batch size: no short last batch, so both sides' batches line up across epochs
TRAIN_EXAMPLES = 64
NOX_TARGET_S = 180.0
#: opt-in: on the shared 2-core machine one `nox -s finetune` took far longer than a training round
RUN_NOX = os.environ.get("BENCH_FINETUNE_NOX", "0") == "1"
#: the sessions that `nox -s finetune` needs first: no session requires another
CHAIN = ("validate_data", "index", "eval_prompts", "finetune")
IGNORE = shutil.ignore_patterns(".git", ".venv", ".nox", "var", "reports", "__pycache__", "*_cache")


def _steady(rows: list[dict[str, float]]) -> list[float]:
    from docs_assistant.train.lora import WARMUP_STEPS

    return [r["tokens_per_s"] for r in rows[WARMUP_STEPS:]] or [r["tokens_per_s"] for r in rows]


def _project(settings: Any, train: list, heldout: list, out: Path) -> dict[str, Any]:
    from docs_assistant.train.lora import train_lora

    t0 = time.perf_counter()
    result = train_lora(settings, train, heldout, out)
    return {
        "wall_s": time.perf_counter() - t0,
        "steps": result.history,
        "heldout_loss": result.metrics["heldout_loss"],
        "n_params": int(result.params["n_params"]),
        "self_reported_mfu": result.metrics["mfu"],
    }


def _order(n: int, seed: int, steps: int, batch: int) -> list[int]:
    """The example order the project's loader draws, drawn by the same seeded, accelerate-prepared loader.

    (Re-deriving it from `torch.randperm` misses the base seeds `DataLoader` draws from the same generator.)
    """
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(range(n), batch_size=batch, shuffle=True, generator=generator, collate_fn=list)
    loader = Accelerator(cpu=True).prepare(loader)
    order: list[int] = []
    while len(order) < steps * batch:
        order += [i for b in loader for i in b]
    return order[: steps * batch]


def _stock(settings: Any, train: list, heldout: list, out: Path) -> dict[str, Any]:
    """transformers `Trainer` + `get_peft_model`, defaults except what must match the project's run."""
    from peft import get_peft_model
    from torch.utils.data import DataLoader
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    from docs_assistant.train.lora import collate, encode, heldout_loss, load_base, lora_config

    ft = settings.finetune
    t0 = time.perf_counter()
    from accelerate.utils import set_seed

    set_seed(ft.seed)
    model, tokenizer, _path, _revision = load_base(settings, bf16=False)
    n_params = sum(p.numel() for p in model.parameters())
    model = get_peft_model(model, lora_config(ft))
    budget = settings.model.max_input_tokens
    sequences = [encode(tokenizer, e, budget, ft.max_seq_length) for e in train]
    ordered = [sequences[i] for i in _order(len(sequences), ft.seed, ft.max_steps, ft.batch_size)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    steps: list[dict[str, float]] = []

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.mark, self.tokens = 0.0, []

        def on_epoch_begin(self, *_args: Any, **_kwargs: Any) -> None:
            self.mark = time.perf_counter()

        def on_step_end(self, *_args: Any, **_kwargs: Any) -> None:
            now = time.perf_counter()
            seconds, tokens = now - self.mark, self.tokens.pop(0)
            steps.append({"tokens": float(tokens), "seconds": seconds, "tokens_per_s": tokens / seconds})
            self.mark = now

    timer = Timer()

    class CountingTrainer(Trainer):
        """Stock, plus the non-pad token count of each batch (the loop prefetches, so collate cannot tell)."""

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            timer.tokens.append(int(inputs["attention_mask"].sum()))
            return super().training_step(model, inputs, num_items_in_batch)

    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=ft.batch_size,
        max_steps=ft.max_steps,
        learning_rate=ft.learning_rate,
        weight_decay=ft.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=int(ft.warmup_ratio * ft.max_steps),
        max_grad_norm=0.0,  # the project does not clip; clipping would change the loss curve compared
        seed=ft.seed,
        use_cpu=True,
        train_sampling_strategy="sequential",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = CountingTrainer(model=model, args=args, train_dataset=ordered, data_collator=collate(pad))
    trainer.add_callback(timer)
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every step's logs
    trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    for row, loss in zip(steps, losses, strict=True):
        row["loss"] = loss
    held = [encode(tokenizer, e, budget, ft.max_seq_length) for e in heldout]
    loader = trainer.accelerator.prepare(DataLoader(held, batch_size=ft.batch_size, collate_fn=collate(pad)))
    return {
        "wall_s": time.perf_counter() - t0,
        "steps": steps,
        "heldout_loss": heldout_loss(trainer.model, loader, trainer.accelerator),
        "n_params": n_params,
        "optimizer": type(
            trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
        ).__name__,
        "optim": str(args.optim),
    }


def _nox_exe() -> str:
    found = shutil.which("nox") or str(Path(sys.executable).with_name("nox"))
    if not Path(found).is_file():
        raise RuntimeError("nox not found: run the suite through `nox -s bench` or `uv sync --all-groups`")
    return found


def _nox_finetune(repo: Path) -> float:
    """The chain to `finetune` with reused session venvs and cold state (every stage does its real work)."""
    for name in ("var", "reports"):
        shutil.rmtree(repo / name, ignore_errors=True)
    env = {k: v for k, v in clean_env().items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [_nox_exe(), "-x", "-s", *CHAIN, "--reuse-venv=yes", "--no-color"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"`nox -s finetune` failed in {repo}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed


def _max_loss_gap(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    return max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b, strict=True))


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from docs_assistant.config import load_settings
    from docs_assistant.data.ingest import ingest
    from docs_assistant.data.store import FeatureStore
    from docs_assistant.rag.embeddings import load_embedder
    from docs_assistant.rag.index import build_index
    from docs_assistant.rag.llm import resolve_model_path
    from docs_assistant.rag.prompts import PromptRegistry
    from docs_assistant.train.data import build_training_data, retrieval_renderer
    from docs_assistant.train.throughput import mfu, peak_flops

    rounds: list[dict[str, Any]] = []
    nox_first_s: float | None = None
    nox_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="docs-assistant-bench-finetune-repo-") as tmp:
        repo = Path(tmp) / "repo"
        if RUN_NOX:
            shutil.copytree(ROOT, repo, ignore=IGNORE)
            nox_first_s = _nox_finetune(repo)  # creates the session venvs
        with scratch_project(NAME) as root:
            settings = load_settings(finetune={"max_steps": MAX_STEPS, "device": "cpu"})
            embedder = load_embedder(settings.embedding)
            ingest(settings)
            build_index(settings, embedder=embedder)
            prompt = PromptRegistry.load(settings.paths.prompts_dir).get(settings.prompt.id, settings.prompt.version)
            data = build_training_data(
                settings, retrieval_renderer(settings, prompt, embedder), prompt, FeatureStore(settings.paths.store_uri)
            )
            train, heldout = data.train[:TRAIN_EXAMPLES], data.heldout
            # built untimed and before any round: building it moves the global RNG after `train_lora` seeds it,
            # which would give the first round's adapter another LoRA init than every later one
            resolve_model_path(settings.model, settings.paths.models_dir)
            import torch

            for i in range(repeat):
                sides = {"project": _project, "stock": _stock}
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                measured = {side: sides[side](settings, train, heldout, root / f"out-{i}-{side}") for side in order}
                peak, _source = peak_flops(torch.device("cpu"), "fp32")
                for side in measured.values():
                    side["steady_tokens_per_s"] = _steady(side["steps"])
                    side["tokens_per_s_p50"] = statistics.median(side["steady_tokens_per_s"])
                    side["mfu"] = mfu(side["tokens_per_s_p50"], side["n_params"], peak)
                rounds.append(measured | {"order": order, "peak_flops": peak})
                if RUN_NOX:
                    nox_s.append(_nox_finetune(repo))

    def per_round(side: str, key: str) -> list[float]:
        return [r[side][key] for r in rounds]

    ratios = [ratio(r["project"]["tokens_per_s_p50"], r["stock"]["tokens_per_s_p50"]) for r in rounds]
    measured_ratio = ratio(statistics.median(ratios), 1.0)
    gaps = [_max_loss_gap(r["project"]["steps"], r["stock"]["steps"]) for r in rounds]
    heldout_gaps = [abs(r["project"]["heldout_loss"] - r["stock"]["heldout_loss"]) for r in rounds]
    results: dict[str, Any] = {
        "ratio_tokens_per_s_per_round": ratios,
        "ratio_tokens_per_s_p50": measured_ratio,
        "max_abs_step_loss_diff_per_round": [round(g, 5) for g in gaps],
        "heldout_loss_abs_diff_per_round": [round(g, 5) for g in heldout_gaps],
        "peak_flops_per_round": [r["peak_flops"] for r in rounds],
        "orders": [r["order"] for r in rounds],
    }
    for side in ("project", "stock"):
        results[side] = {
            "tokens_per_s_steps": summarize([t for r in rounds for t in r[side]["steady_tokens_per_s"]]),
            "tokens_per_s_round_p50": summarize(per_round(side, "tokens_per_s_p50")),
            "mfu_4n": summarize(per_round(side, "mfu")),
            "final_train_loss": [round(r[side]["steps"][-1]["loss"], 5) for r in rounds],
            "heldout_loss": [round(r[side]["heldout_loss"], 5) for r in rounds],
            "step_losses_first_round": [round(s["loss"], 5) for s in rounds[0][side]["steps"]],
            "wall_s": summarize(per_round(side, "wall_s")),
        }
    results["project"]["self_reported_mfu"] = per_round("project", "self_reported_mfu")
    results["stock"]["optimizer"] = rounds[0]["stock"]["optimizer"]
    nox_line = "`nox -s finetune` not timed (BENCH_FINETUNE_NOX=1 to time it)"
    if RUN_NOX:
        results["nox_finetune_s"] = summarize(nox_s)
        results["nox_finetune_first_s"] = round(nox_first_s or 0.0, 2)
        results["nox_finetune_target_s"] = NOX_TARGET_S
        results["nox_finetune_met"] = results["nox_finetune_s"]["p50"] < NOX_TARGET_S
        nox_line = (
            f"`nox -s finetune` {results['nox_finetune_s']['p50']:.0f} s (reused venvs, cold state; "
            f"target < {NOX_TARGET_S:.0f} s), first with venv creation {nox_first_s:.0f} s"
        )
    p, s = results["project"]["tokens_per_s_round_p50"], results["stock"]["tokens_per_s_round_p50"]
    return BenchResult(
        name=NAME,
        description="LoRA training tokens/s and MFU (4N): train_lora vs stock Trainer+peft on the tiny model, CPU",
        repeat=repeat,
        target=f"nox -s finetune < {NOX_TARGET_S:.0f} s" if RUN_NOX else "project/stock tokens/s reported",
        target_metric="median over rounds of project p50 / stock p50 steady-state tokens/s",
        target_applies_to=(
            "the CPU tiny-model ratio is reported only: the >= 1.5x target is for the 7B shape on a GPU "
            "(benchmarks/gpu_finetune.py); met = the nox -s finetune wall time, when timed"
        ),
        measured=measured_ratio,
        met=bool(results.get("nox_finetune_met", True)),
        headline=(
            f"project {p['p50']:.0f} tokens/s vs stock {s['p50']:.0f} ({measured_ratio:.2f}x), MFU "
            f"{results['project']['mfu_4n']['p50']:.1%} vs {results['stock']['mfu_4n']['p50']:.1%}; "
            f"step losses differ by <= {max(gaps):.3g}; {nox_line}"
        ),
        params={
            "model": settings.model.name,
            "max_steps": MAX_STEPS,
            "batch_size": settings.finetune.batch_size,
            "max_seq_length": settings.finetune.max_seq_length,
            "train_examples": len(train),
            "heldout_examples": len(heldout),
            "rank": settings.finetune.rank,
            "target_modules": settings.finetune.target_modules,
            "run_nox": RUN_NOX,
        },
        results=results,
    )
