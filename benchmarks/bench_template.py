"""Time to a working generated project: cookiecutter render + its first `nox -s tests`.

The peer is the same first `nox -s tests` in a clean copy of this source tree, measured in the same run
(alternating, so drift hits both alike): the template should add little more than its render time.
Both start without a `.nox/` directory, so each pays venv creation from uv's (warm) cache, as a new
project does on a machine that already ran one. The tests run are selectable; by default `tests/unit`,
which both trees hold (the heavier layers measure the models, not the template).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._project import ROOT, clean_env
from benchmarks._stats import BenchResult, ratio, summarize

NAME = "template"
DEFAULT_REPEAT = 3
TARGET_RATIO = 1.25
#: the same tests on both sides: the source tree also holds the template's own tests, a generated project not
PYTEST_ARGS = os.environ.get("BENCH_TEMPLATE_PYTEST_ARGS", "tests/unit -q")
ANSWERS = {"project_name": "Bench Bot", "workflows_repo": "acme/llmops-template"}


def _source_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
    return target


def _first_tests(project: Path) -> float:
    nox = shutil.which("nox")
    if not nox:
        raise RuntimeError("nox not found: run the suite through `nox -s bench` (dependency group 'bench')")
    import shlex

    t0 = time.perf_counter()
    proc = subprocess.run(
        [nox, "-s", "tests", "--no-color", "--", *shlex.split(PYTEST_ARGS)],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"`nox -s tests` failed in {project}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def run(repeat: int = DEFAULT_REPEAT) -> BenchResult:
    from cookiecutter.main import cookiecutter

    render_s, generated_s, source_s = [], [], []
    with tempfile.TemporaryDirectory(prefix="docs-assistant-bench-template-") as tmp:
        template = _source_copy(Path(tmp) / "template")
        for i in range(repeat):
            t0 = time.perf_counter()
            project = Path(
                cookiecutter(str(template), no_input=True, output_dir=str(Path(tmp) / f"out{i}"), extra_context=ANSWERS)
            )
            render_s.append(time.perf_counter() - t0)
            generated_s.append(_first_tests(project))
            source_s.append(_first_tests(_source_copy(Path(tmp) / f"source{i}")))
    total = [r + g for r, g in zip(render_s, generated_s, strict=True)]
    results: dict[str, Any] = {
        "render_s": summarize(render_s),
        "generated_first_tests_s": summarize(generated_s),
        "render_plus_first_tests_s": summarize(total),
        "source_first_tests_s": summarize(source_s),
    }
    measured = ratio(results["render_plus_first_tests_s"]["p50"], results["source_first_tests_s"]["p50"])
    results["ratio_p50"] = measured
    return BenchResult(
        name=NAME,
        description="cookiecutter render + first `nox -s tests` of a generated project vs the source tree's",
        repeat=repeat,
        target=f"<= {TARGET_RATIO}x source",
        target_metric="render_plus_first_tests_s.p50 / source_first_tests_s.p50",
        measured=measured,
        met=measured <= TARGET_RATIO,
        headline=(
            f"render {results['render_s']['p50']:.1f} s + first tests "
            f"{results['generated_first_tests_s']['p50']:.1f} s vs source {results['source_first_tests_s']['p50']:.1f} s "
            f"({measured:.2f}x)"
        ),
        params={"pytest_args": PYTEST_ARGS, "answers": ANSWERS},
        results=results,
    )
