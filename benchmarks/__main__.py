"""Run the performance suite: `python -m benchmarks [NAME ...] [--repeat N] [--strict] [--out DIR]`.

Exit status: 0 when every benchmark ran (a missed target is reported, not fatal, because shared
machines are noisy), 1 with `--strict` when a target was missed, 2 when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

# Before any library import: offline and quiet, as every stage of the project runs.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "LANCE_LOG": "error",
    "LANCEDB_LOG": "error",
}.items():
    os.environ.setdefault(_key, _value)

import importlib  # noqa: E402
import pkgutil  # noqa: E402

import benchmarks  # noqa: E402
from benchmarks._stats import summary_row, write_result, write_summary  # noqa: E402

ORDER = (
    "retrieval",
    "pipeline_rerun",
    "serve_startup",
    "serve_latency",
    "serve_throughput",
    "stream_ttft",
    "template",
)


def _discover() -> dict[str, ModuleType]:
    """Every `bench_*.py` module (a generated project has no `bench_template`: it is not a template)."""
    found = [
        importlib.import_module(f"benchmarks.{info.name}")
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_")
    ]
    by_name = {m.NAME: m for m in found}
    return {n: by_name[n] for n in sorted(by_name, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))}


BENCHMARKS: dict[str, ModuleType] = _discover()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    names = ", ".join(BENCHMARKS)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all): {names}")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions per benchmark (default: retrieval 30 rounds over the eval questions, pipeline_rerun 3)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="results directory")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()  # benchmarks chdir into scratch projects
    names = args.names or list(BENCHMARKS)
    failed = False
    for name in names:
        module = BENCHMARKS[name]
        repeat = args.repeat or module.DEFAULT_REPEAT
        print(f"running {name} (repeat {repeat}) ...", file=sys.stderr, flush=True)
        try:
            data = module.run(repeat).as_dict()
        except Exception:
            traceback.print_exc()
            failed = True
            continue
        write_result(out, data)
    results = [_load(out / f"{n}.json") for n in BENCHMARKS if (out / f"{n}.json").is_file()]
    summary = write_summary(out, results)
    _print_table(results)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(summary + "\n")
    if failed:
        return 2
    missed = [r["benchmark"] for r in results if r["benchmark"] in names and not r["met"]]
    if missed:
        print(f"target missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.strict else 0


def _load(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _print_table(results: list[dict]) -> None:
    rows = [summary_row(r)[:5] for r in results]
    headers = ["benchmark", "measured", "target", "met", "details"]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
