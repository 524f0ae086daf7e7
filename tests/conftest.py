"""Shared fixtures: real LanceDB in temp dirs, the real bundled embedder, the real tiny model.

Heavy objects (embedder, tiny model checkpoint, a fully indexed copy of the sample data) are built once
per session; each test that writes gets its own project directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from docs_assistant.config import CONFIG_FILE_ENV

REPO = Path(__file__).resolve().parents[1]
SMALL_CORPUS = 8  # documents in the per-test project: enough for retrieval, quick to embed
_DIRECTORY_SECONDS: dict[str, float] = {}


# -- where the suite's time goes: wall seconds (setup + call + teardown) per test directory ------------
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    directory = report.nodeid.split("::", 1)[0].split("/")
    key = directory[1] if len(directory) > 2 and directory[0] == "tests" else directory[0]
    _DIRECTORY_SECONDS[key] = _DIRECTORY_SECONDS.get(key, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _DIRECTORY_SECONDS:
        return
    terminalreporter.write_sep("=", "test seconds per directory (setup + call + teardown, summed over workers)")
    for key, seconds in sorted(_DIRECTORY_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{key:<12} {seconds:8.1f}")
    terminalreporter.write_line(f"{'total':<12} {sum(_DIRECTORY_SECONDS.values()):8.1f}")


#: test modules that one worker runs one after another: the two whole chains deploy the same service names
ONE_WORKER = {
    "tests/e2e/test_nox_pipeline.py": "chain",
    "tests/e2e/test_nox_validate.py": "chain",
    "tests/workflows/test_cd_act.py": "chain",
}
#: the work units that start first: the slowest of a CI run, so they overlap everything else. test_image
#: builds the image's dependency layer (minutes, cold); the chain's image builds come a few units later and
#: reuse it instead of building the same layer beside it (the classic builder does not share a running step)
FIRST = (
    "tests/docker/test_image.py",
    "tests/template/test_generated_ci.py",
    "tests/workflows/test_finetune_act.py",
    "chain",
    "tests/docker/test_swarm.py",
    "tests/workflows/test_prompt_evals_act.py",
    "tests/integration/test_finetune.py",
    "tests/integration/test_offline.py",
)


def work_unit(nodeid: str) -> str:
    """What one pytest-xdist worker runs as a whole: a test module (module fixtures, steps that build on each
    other), or a group of modules from ONE_WORKER."""
    module = nodeid.split("::", 1)[0]
    return ONE_WORKER.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units by `work_unit` (xdist's `xdist_group` marks do not group under pytest 9.2: it ignores the
    `_nodeid` xdist rewrites)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The units in FIRST go first (`nox -s tests` passes `--no-loadscope-reorder`, so xdist keeps this order)."""
    rank = {unit: i for i, unit in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(FIRST)))


@pytest.fixture(autouse=True, scope="session")
def _offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Everything must work with no model hub; and a developer's own config file must not leak in."""
    mp = pytest.MonkeyPatch()
    empty_config = tmp_path_factory.mktemp("config") / "empty.toml"
    empty_config.write_text("", encoding="utf-8")
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    mp.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in list(__import__("os").environ):
        if name.startswith("DOCS_ASSISTANT_"):
            mp.delenv(name)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # the registry's fallback: no developer's server is used
    mp.setenv(CONFIG_FILE_ENV, str(empty_config))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the session: the tiny model is built on first use, then loaded from disk."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def embedder() -> Any:
    from docs_assistant.config import EmbeddingSettings
    from docs_assistant.rag.embeddings import load_embedder

    return load_embedder(EmbeddingSettings())


@dataclass
class Project:
    """A throwaway copy of the project's inputs; settings resolve relative to `root`."""

    root: Path
    models_dir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def settings(self, **overrides: Any) -> Any:
        from docs_assistant.config import load_settings

        paths = {
            "data_dir": self.root / "data",
            "prompts_dir": self.root / "prompts",
            "state_dir": self.root / "var",
            "reports_dir": self.root / "reports",
            "model_cache_dir": self.models_dir,
        } | overrides.pop("paths", {})
        return load_settings(paths=paths, **overrides)

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for the CLI."""
        s = self.settings().paths
        return {
            "DOCS_ASSISTANT_PATHS__DATA_DIR": str(s.data_dir),
            "DOCS_ASSISTANT_PATHS__PROMPTS_DIR": str(s.prompts_dir),
            "DOCS_ASSISTANT_PATHS__STATE_DIR": str(s.state_dir),
            "DOCS_ASSISTANT_PATHS__REPORTS_DIR": str(s.reports_dir),
            "DOCS_ASSISTANT_PATHS__MODEL_CACHE_DIR": str(s.model_cache_dir),
        }

    def doc(self, doc_id: str) -> Path:
        return self.data / "docs" / f"{doc_id}.md"


def make_project(root: Path, models_dir: Path, n_docs: int | None) -> Project:
    """Copy prompts and the first `n_docs` documents (all if None) with the QA pairs that cite only them."""
    shutil.copytree(REPO / "prompts", root / "prompts")
    docs = sorted((REPO / "data" / "docs").glob("*.md"))
    docs = docs if n_docs is None else docs[:n_docs]
    (root / "data" / "docs").mkdir(parents=True)
    for path in docs:
        shutil.copy(path, root / "data" / "docs" / path.name)
    keep = {p.stem for p in docs}
    (root / "data" / "qa").mkdir()
    for split in ("train", "eval"):
        lines = (REPO / "data" / "qa" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and set(json.loads(line)["doc_ids"]) <= keep]
        (root / "data" / "qa" / f"{split}.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return Project(root, models_dir)


@pytest.fixture
def project(tmp_path: Path, models_dir: Path) -> Project:
    """A small writable project (not yet ingested)."""
    return make_project(tmp_path / "project", models_dir, SMALL_CORPUS)


def ingest_and_index(project: Project, embedder: Any) -> Project:
    """Run the two stages every read-side test needs, with the session's embedder."""
    from docs_assistant.data.ingest import ingest
    from docs_assistant.rag.index import build_index

    settings = project.settings()
    ingest(settings)
    build_index(settings, embedder=embedder)
    return project


@pytest.fixture
def indexed_project(project: Project, embedder: Any) -> Project:
    """The small project, ingested and indexed."""
    return ingest_and_index(project, embedder)


@pytest.fixture(scope="session")
def full_project(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, embedder: Any) -> Project:
    """All of data/, ingested and indexed once per session (read-only for tests)."""
    return ingest_and_index(make_project(tmp_path_factory.mktemp("full") / "project", models_dir, None), embedder)


# -- model registry -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lora_adapters(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> list[Path]:
    """Two real LoRA adapters of the tiny model (peft, safetensors) with different, non-zero weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from docs_assistant.rag.tiny_model import ensure_tiny_model

    root = tmp_path_factory.mktemp("adapters")
    base = ensure_tiny_model(models_dir)
    made = []
    for seed in (1, 2):
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # lora_B starts at zero, which would make every adapter a no-op
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator))
        peft_model.save_pretrained(root / f"adapter-{seed}")
        made.append(root / f"adapter-{seed}")
    return made


@pytest.fixture(scope="session")
def blank_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema made once (the migrations take seconds); tests copy it."""
    from docs_assistant.config import load_settings
    from docs_assistant.registry import ModelRegistry

    state = tmp_path_factory.mktemp("blank-registry")
    registry = ModelRegistry(load_settings(paths={"state_dir": state}))
    registry.client.search_experiments()
    assert registry.backend.database is not None
    return registry.backend.database


def with_registry(project: Project, blank_db: Path) -> Project:
    """Give the project an empty embedded registry (a copy of the blank database)."""
    target = project.settings().paths.state_dir / "mlflow" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(blank_db, target)
    return project


def training_run(adapter: Path, step_losses: tuple[float, ...] = (3.0, 2.5, 2.0), **metrics: float) -> Any:
    """A TrainingRun as finetune logs it: params, final and per-step metrics, lineage, the loss curve."""
    from docs_assistant.registry import TrainingRun

    curve = adapter.parent / f"{adapter.name}-loss_curve.png"
    if not curve.exists():
        curve.write_bytes(b"\x89PNG\r\n\x1a\n" + adapter.name.encode())
    return TrainingRun(
        adapter_dir=adapter,
        params={"rank": 4, "alpha": 8, "learning_rate": 0.005, "target_modules": ["q_proj", "v_proj"]},
        metrics={"train_loss": step_losses[-1], "tokens_per_s": 123.0} | metrics,
        history=[{"step": i, "loss": loss, "tokens_per_s": 100.0 + i} for i, loss in enumerate(step_losses, start=1)],
        lineage={
            "git_sha": "0123456789abcdef",
            "data.qa.version": "3",
            "prompt.rag-answer@1.hash": "abc123",
            "base_model": "tiny-random-llama",
            "base_revision": "rev0",
        },
        artifacts=[curve],
    )
