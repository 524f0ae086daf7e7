"""Training speed in the units people compare: tokens/s, model FLOPs utilisation (MFU), peak memory.

MFU counts 4N FLOPs per token (N = the base model's parameters): 2N forward and 2N for the activation
gradients of the backward pass. LoRA computes no weight gradients for the frozen weights, so the usual 6N
would overstate the work; the adapter's own FLOPs (a fraction of a percent) and attention are left out.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

#: dense peak TFLOP/s by GPU name fragment (vendor data sheets, SXM parts, no sparsity)
GPU_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp32": 91.6},
    "L4": {"bf16": 121.0, "fp32": 30.3},
    "A10": {"bf16": 125.0, "fp32": 31.2},
}


def flops_per_token(n_params: int) -> float:
    return 4.0 * n_params


def peak_flops(device: Any, dtype: str) -> tuple[float, str]:
    """(FLOP/s the device can do at best, where that number comes from).

    GPUs: the data sheet. CPUs have no useful data-sheet figure, so the peak is a dense matmul measured
    here and now; CPU MFU therefore says how close training gets to this machine's own GEMM speed.
    """
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        name = torch.cuda.get_device_name(device)
        for fragment, table in GPU_PEAK_TFLOPS.items():
            if fragment in name:
                return table[dtype] * 1e12, f"{name} data sheet, {dtype} dense"
        return float("nan"), f"{name}: unknown peak (add it to GPU_PEAK_TFLOPS)"
    return measured_matmul_flops(), "measured fp32 matmul on this CPU"


def measured_matmul_flops(size: int = 512, seconds: float = 0.3) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: thread pool start, first allocation
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        done += 1
    return done * 2.0 * size**3 / (time.perf_counter() - started)


def peak_memory_mb(device: Any) -> tuple[float, str]:
    """(peak MB, what was measured): CUDA's allocator peak on GPU, the process's peak RSS on CPU."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "process peak RSS"


def mfu(tokens_per_s: float, n_params: int, peak: float) -> float:
    return tokens_per_s * flops_per_token(n_params) / peak if peak and peak == peak else float("nan")
