"""`model.adapter_alias`: start-up loads the adapter a registry alias points to, verified, or fails naming why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from docs_assistant.registry import CHAMPION, ModelRegistry, adapter_hash
from docs_assistant.serve.startup import Startup

from ..conftest import training_run, with_registry  # noqa: TID252 - the shared registry helpers

pytestmark = pytest.mark.integration
TOKENS = [[5, 17, 42, 99, 7]]


@pytest.fixture(scope="module")
def alias_project(serve_project, blank_registry_db, lora_adapters):
    """The module's indexed project with a registry: v1 champion, v2 candidate."""
    with_registry(serve_project, blank_registry_db)
    registry = ModelRegistry(serve_project.settings())
    for adapter in lora_adapters:
        registry.register(registry.log_run(training_run(adapter)), adapter_hash(adapter))
    registry.set_alias(CHAMPION, 1)
    return serve_project


def logits(model) -> list:
    import torch

    with torch.no_grad():
        return model(torch.tensor(TOKENS)).logits.tolist()


def started(settings, embedder) -> Startup:
    startup = Startup(settings, embedder=embedder)
    startup.start()
    assert startup.wait(180), "start-up did not finish"
    return startup


def test_startup_loads_the_champion_verified(alias_project, embedder, lora_adapters) -> None:
    from docs_assistant.rag.llm import LocalLLM
    from docs_assistant.rag.pipeline import RagPipeline

    settings = alias_project.settings(model={"adapter_alias": CHAMPION})
    startup = started(settings, embedder)
    assert startup.ready, startup.error
    assert "/adapters/docs-assistant-adapter/v1-" in startup.model_info.adapter
    original = LocalLLM(
        settings.model.model_copy(update={"adapter_alias": None, "adapter_path": lora_adapters[0]}),
        settings.paths.models_dir,
    )
    assert logits(startup.pipeline.llm.model) == logits(original.model)

    pipeline = RagPipeline(settings, embedder=embedder)
    assert pipeline.llm.info.adapter == startup.model_info.adapter


def test_startup_fails_on_a_tampered_adapter(alias_project, embedder) -> None:
    settings = alias_project.settings(model={"adapter_alias": CHAMPION})
    registry = ModelRegistry(settings)
    registry.set_alias(CHAMPION, 2)
    info = registry.get(CHAMPION)
    assert info is not None
    stored = settings.paths.state_dir.resolve() / "mlflow" / "artifacts" / info.run_id / "artifacts" / "adapter"
    weights = stored / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    shutil.rmtree(settings.paths.models_dir / "adapters", ignore_errors=True)  # no verified copy to fall back on

    startup = started(settings, embedder)
    assert not startup.ready
    status = startup.status()
    assert status["phase"] == "model"
    assert "version 2" in status["error"]
    assert f"registered {info.adapter_hash}" in status["error"]
    assert "downloaded " in status["error"]


def test_without_an_alias_nothing_imports_mlflow(alias_project) -> None:
    """Serving start-up time is benchmarked: the registry costs nothing unless an alias is set."""
    script = textwrap.dedent(
        """
        import json, sys
        import docs_assistant.evals.runner, docs_assistant.rag.pipeline, docs_assistant.serve.app
        from docs_assistant.config import load_settings
        from docs_assistant.registry import resolve_model_settings

        settings = load_settings()
        same = resolve_model_settings(settings) is settings.model
        print(json.dumps({"same": same, "mlflow": "mlflow" in sys.modules}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"same": True, "mlflow": False}
