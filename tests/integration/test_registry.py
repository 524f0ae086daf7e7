"""The model registry on real MLflow (SQLite + a local artifact directory) with real peft adapters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.errors import ConfigError, RegistryError
from docs_assistant.registry import (
    CANDIDATE,
    CHAMPION,
    ModelRegistry,
    adapter_hash,
    mlflow_key,
    resolve_model_settings,
)

from ..conftest import training_run, with_registry  # noqa: TID252 - the shared registry helpers

pytestmark = pytest.mark.integration


@pytest.fixture
def reg_project(project, blank_registry_db):
    return with_registry(project, blank_registry_db)


@pytest.fixture
def registered(reg_project, lora_adapters):
    """Two runs logged and registered: v1 then v2 (candidate), v1 promoted to champion."""
    registry = ModelRegistry(reg_project.settings())
    for adapter in lora_adapters:
        run_id = registry.log_run(training_run(adapter))
        registry.register(run_id, adapter_hash(adapter))
    registry.set_alias(CHAMPION, 1)
    return registry


def stored_weights(registry: ModelRegistry, version: int) -> Path:
    """The artifact store's copy of a version's weights (what a tamperer would edit)."""
    info = registry.get(version)
    assert info is not None
    root = registry.settings.paths.state_dir.resolve() / "mlflow" / "artifacts"
    return root / info.run_id / "artifacts" / "adapter" / "adapter_model.safetensors"


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_run_logs_params_metrics_steps_lineage_and_artifacts(reg_project, lora_adapters) -> None:
    settings = reg_project.settings()
    registry = ModelRegistry(settings)
    run = training_run(lora_adapters[0])
    run_id = registry.log_run(run)

    client = registry.client
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params == {
        "rank": "4",
        "alpha": "8",
        "learning_rate": "0.005",
        "target_modules": '["q_proj", "v_proj"]',
    }
    assert logged.data.metrics["train_loss"] == 2.0
    assert logged.data.metrics["tokens_per_s"] == 123.0, "the final value, not the last step's"
    losses = client.get_metric_history(run_id, "loss")
    assert sorted((m.step, m.value) for m in losses) == [(1, 3.0), (2, 2.5), (3, 2.0)]
    tags = logged.data.tags
    assert tags["adapter_hash"] == adapter_hash(lora_adapters[0])
    assert tags["git_sha"] == "0123456789abcdef"
    assert tags["mlflow.source.git.commit"] == "0123456789abcdef"
    assert tags["data.qa.version"] == "3"
    assert tags[mlflow_key("prompt.rag-answer@1.hash")] == "abc123"
    assert mlflow_key("prompt.rag-answer@1.hash") == "prompt.rag-answer_1.hash"
    assert tags["base_model"] == "tiny-random-llama"
    assert {a.path for a in client.list_artifacts(run_id)} == {"adapter", "adapter-1-loss_curve.png"}
    assert {a.path for a in client.list_artifacts(run_id, "adapter")} >= {
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    }
    experiment = client.get_experiment_by_name(settings.registry.experiment)
    expected = (settings.paths.state_dir / "mlflow" / "artifacts").resolve().as_uri()
    assert experiment.artifact_location == expected
    assert logged.info.artifact_uri.startswith(expected)


def test_register_aliases_and_promotion(registered, lora_adapters) -> None:
    registry = registered
    first, second = registry.get(1), registry.get("2")
    assert first is not None
    assert second is not None
    assert first.adapter_hash == adapter_hash(lora_adapters[0])
    assert second.adapter_hash == adapter_hash(lora_adapters[1])
    assert first.source == f"runs:/{first.run_id}/adapter"
    assert first.tags["base_model"] == "tiny-random-llama", "lineage is copied onto the version"
    assert first.tags["adapter_hash"] == first.adapter_hash
    assert first.metrics["train_loss"] == 2.0
    assert first.aliases == (CHAMPION,), "registering v2 moved candidate away from v1"
    assert second.aliases == (CANDIDATE,)
    assert registry.get(CANDIDATE) == second
    assert registry.get(CHAMPION) == first

    registry.set_alias(CHAMPION, 2)
    assert registry.get(CHAMPION).version == 2  # type: ignore[union-attr]
    assert [(v.version, v.aliases) for v in registry.versions()] == [(1, ()), (2, (CANDIDATE, CHAMPION))]

    assert registry.get(3) is None
    assert registry.get("staging") is None
    with pytest.raises(RegistryError, match="has no version 7"):
        registry.set_alias(CHAMPION, 7)
    with pytest.raises(RegistryError, match="invalid alias 'v2'"):
        registry.set_alias("v2", 1)
    with pytest.raises(RegistryError, match="logged an adapter with hash") as wrong:
        registry.register(first.run_id, "0" * 64)
    assert wrong.value.where == "argument 'adapter_hash'"


def test_fetch_in_a_fresh_process_loads_the_same_weights(registered, lora_adapters, tmp_path: Path) -> None:
    """A new process fetches the champion and resolves model.adapter_alias=champion; the logits of the
    model loaded from what it fetched equal those of the original adapter directory."""
    import torch

    from docs_assistant.rag.llm import LocalLLM

    settings = registered.settings
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from docs_assistant.config import load_settings
        from docs_assistant.registry import ModelRegistry, resolve_model_settings

        settings = load_settings()
        fetched = ModelRegistry(settings).fetch_adapter("champion", dest=Path(sys.argv[1]))
        resolved = resolve_model_settings(settings)
        print(json.dumps({"fetched": str(fetched), "resolved": str(resolved.adapter_path), "torch": "torch" in sys.modules}))
        """
    )
    env = os.environ | registered_env(registered) | {"DOCS_ASSISTANT_MODEL__ADAPTER_ALIAS": CHAMPION}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "copy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["fetched"] == str(tmp_path / "copy")
    assert "/adapters/docs-assistant-adapter/v1-" in out["resolved"]
    assert not out["torch"], "fetching an adapter needs no torch"

    def logits(adapter: Path | None) -> list:
        llm = LocalLLM(settings.model.model_copy(update={"adapter_path": adapter}), settings.paths.models_dir)
        with torch.no_grad():
            return llm.model(torch.tensor([[5, 17, 42, 99, 7]])).logits.tolist()

    original = logits(lora_adapters[0])
    assert logits(Path(out["fetched"])) == original
    assert logits(Path(out["resolved"])) == original
    assert original != logits(None), "the adapter changes the model"


def registered_env(registry: ModelRegistry) -> dict[str, str]:
    p = registry.settings.paths
    return {
        "DOCS_ASSISTANT_PATHS__STATE_DIR": str(p.state_dir),
        "DOCS_ASSISTANT_PATHS__MODEL_CACHE_DIR": str(p.models_dir),
    }


def test_a_tampered_artifact_is_refused_naming_both_hashes(registered, tmp_path: Path) -> None:
    registry = registered
    good = registry.get(1)
    assert good is not None
    flip_one_byte(stored_weights(registry, 1))
    with pytest.raises(RegistryError) as refused:
        registry.fetch_adapter(1, dest=tmp_path / "out" / "copy")
    message = str(refused.value)
    assert f"registered {good.adapter_hash}" in message
    assert "downloaded " in message
    assert message.count("downloaded ") == 1
    assert "docs-assistant-adapter version 1" in message
    assert "registry promote" in message
    assert os.listdir(tmp_path / "out") == [], "neither the copy nor a half-downloaded staging directory is left"
    # the service's path too, once no verified copy of v1 is cached (copies are keyed by content hash)
    shutil.rmtree(
        registry.settings.paths.models_dir / "adapters" / registry.name / f"v1-{good.adapter_hash[:12]}", True
    )
    with pytest.raises(RegistryError, match="does not match its registered hash"):
        resolve_model_settings(registry.settings.model_copy(update={"model": _alias_model(registry, CHAMPION)}))
    assert registry.fetch_adapter(2).is_dir(), "other versions are unaffected"


def _alias_model(registry: ModelRegistry, alias: str):
    return registry.settings.model.model_copy(update={"adapter_alias": alias})


def test_an_embedded_registry_moved_with_its_state_dir_still_fetches_and_verifies(registered, tmp_path: Path) -> None:
    """cd.yml hands `var/` from the release job to the image job, whose checkout may sit elsewhere."""
    from docs_assistant.config import load_settings

    old_state = registered.settings.paths.state_dir
    moved = tmp_path / "elsewhere" / "var"
    shutil.copytree(old_state / "mlflow", moved / "mlflow")
    shutil.rmtree(old_state / "mlflow")  # MLflow's recorded absolute paths now lead nowhere
    registry = ModelRegistry(load_settings(paths={"state_dir": moved}))
    info = registry.get(CHAMPION)
    assert info is not None
    fetched = registry.fetch(info, tmp_path / "fetched")
    assert adapter_hash(fetched) == info.adapter_hash

    flip_one_byte(stored_weights(registry, 1))
    with pytest.raises(RegistryError, match="does not match its registered hash"):
        registry.fetch(info, tmp_path / "tampered")


def test_a_verified_copy_is_reused_and_a_damaged_one_replaced(registered) -> None:
    registry = registered
    first = registry.fetch_adapter(CHAMPION)
    assert first.name.startswith("v1-")
    assert registry.fetch_adapter(1) == first
    flip_one_byte(first / "adapter_model.safetensors")
    again = registry.fetch_adapter(CHAMPION)
    assert again == first
    assert adapter_hash(again) == registry.get(1).adapter_hash  # type: ignore[union-attr]


def test_unknown_refs_and_settings_give_clear_errors(registered, reg_project, tmp_path: Path) -> None:
    registry = registered
    with pytest.raises(RegistryError, match="alias 'staging' is not set") as unknown:
        registry.fetch_adapter("staging")
    assert "registry promote <version> --alias staging" in str(unknown.value)
    with pytest.raises(RegistryError, match="has no version 9"):
        registry.fetch_adapter(9)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RegistryError, match="not an empty directory"):
        registry.fetch_adapter(1, dest=tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text(encoding="utf-8") == "mine"

    settings = reg_project.settings(model={"adapter_alias": "staging"})
    with pytest.raises(RegistryError) as unset:
        resolve_model_settings(settings)
    assert unset.value.where is not None
    assert "model.adapter_alias" in unset.value.where
    both = reg_project.settings(model={"adapter_alias": CHAMPION, "adapter_path": str(tmp_path)})
    with pytest.raises(ConfigError, match="set one"):
        resolve_model_settings(both)
    remote = reg_project.settings(model={"adapter_alias": CHAMPION, "backend": "openai"})
    with pytest.raises(ConfigError, match="local model"):
        resolve_model_settings(remote)
    other_base = reg_project.settings(model={"adapter_alias": CHAMPION, "name": str(tmp_path)})
    with pytest.raises(RegistryError, match="trained on base model 'tiny-random-llama'"):
        resolve_model_settings(other_base)


def test_an_empty_registry_reads_as_empty_without_creating_it(project) -> None:
    settings = project.settings(model={"adapter_alias": CHAMPION})
    registry = ModelRegistry(settings)
    assert registry.versions() == []
    assert registry.get(CHAMPION) is None
    with pytest.raises(RegistryError, match="alias 'champion' is not set"):
        resolve_model_settings(settings)
    assert not (settings.paths.state_dir / "mlflow").exists()


def test_not_an_adapter_is_refused_before_logging(reg_project, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"adapter_model\.safetensors"):
        adapter_hash(tmp_path)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"x")
    (tmp_path / "adapter_model.bin").write_bytes(b"x")
    with pytest.raises(RegistryError, match="pickle-format weights"):
        ModelRegistry(reg_project.settings()).log_run(training_run(tmp_path))


def test_eval_identity_follows_the_alias(registered) -> None:
    """The evals cache key names the version an alias points to, so promotion invalidates cached results."""
    from docs_assistant.evals.cache import model_identity

    settings = registered.settings.model_copy(update={"model": _alias_model(registered, CHAMPION)})
    before = model_identity(resolve_model_settings(settings))
    registered.set_alias(CHAMPION, 2)
    after = model_identity(resolve_model_settings(settings))
    assert before["adapter_hash"]
    assert after["adapter_hash"]
    assert before != after
    registered.set_alias(CHAMPION, 1)
    assert model_identity(resolve_model_settings(settings)) == before


def cli(project, *args: str):
    result = CliRunner().invoke(app, list(args), env=project.env())
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_list_show_promote_fetch(registered, reg_project, tmp_path: Path) -> None:
    listed = cli(reg_project, "registry", "list")
    assert listed.exit_code == 0, listed.output
    assert "candidate" in listed.stdout
    assert "champion" in listed.stdout
    assert registered.get(1).adapter_hash[:12] in listed.stdout  # type: ignore[union-attr]
    as_json = json.loads(cli(reg_project, "registry", "list", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in as_json] == [(1, [CHAMPION]), (2, [CANDIDATE])]

    shown = json.loads(cli(reg_project, "registry", "show", CHAMPION).stdout)
    assert shown["version"] == 1
    assert shown["tags"]["git_sha"] == "0123456789abcdef"
    assert shown["metrics"]["train_loss"] == 2.0

    promoted = cli(reg_project, "registry", "promote", "2")
    assert promoted.exit_code == 0, promoted.output
    assert "champion: v1 -> v2" in promoted.stdout
    assert registered.get(CHAMPION).version == 2  # type: ignore[union-attr]

    fetched = cli(reg_project, "registry", "fetch", CHAMPION, "--dest", str(tmp_path / "copy"))
    assert fetched.exit_code == 0, fetched.output
    assert adapter_hash(tmp_path / "copy") == registered.get(2).adapter_hash  # type: ignore[union-attr]

    flip_one_byte(stored_weights(registered, 1))
    refused = cli(reg_project, "registry", "fetch", "1", "--dest", str(tmp_path / "bad"))
    assert refused.exit_code == 2
    assert "does not match its registered hash" in refused.output
    unknown = cli(reg_project, "registry", "show", "staging")
    assert unknown.exit_code == 2
    assert "alias 'staging' is not set" in unknown.output
