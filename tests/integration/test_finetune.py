"""The finetune stage on the real tiny model, real LanceDB and real MLflow (SQLite) in a temp project.

One module-scoped project trains twice with the same seed: the first adapter becomes champion, the
second (identical, so it cannot beat the champion by the required margin) is registered but not promoted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, ingest_and_index, make_project

pytestmark = pytest.mark.training

CLI = str(Path(sys.executable).with_name("docs-assistant"))
#: few optimizer steps on a shorter context (the same format, fitted to the budget as serving fits it), scored on
#: the first eval cases: the loss falls from ~6.9 to ~4.6 nats/token within them on the tiny model
QUICK = {"max_steps": 6, "batch_size": 8, "max_seq_length": 640}
INPUT_TOKENS = 512
HELDOUT_CASES = 12
#: the adapter must beat the base model's held-out reference-answer loss by at least this much (relative).
#: Measured on 2026-11-27: base 6.96 -> adapter 4.45-4.65 nats/token, i.e. 33-36 % lower.
CLEAR_MARGIN = 0.20


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, embedder: Any) -> dict[str, Any]:
    from docs_assistant.train.finetune import run_finetune

    project = ingest_and_index(make_project(tmp_path_factory.mktemp("ft") / "project", models_dir, 8), embedder)
    suites = project.root / "evals" / "suites.toml"
    suites.parent.mkdir()
    cases = (Path("evals/datasets/qa.jsonl").read_text(encoding="utf-8").splitlines())[:HELDOUT_CASES]
    (suites.parent / "qa.jsonl").write_text("\n".join(cases) + "\n", encoding="utf-8")
    suites.write_text(
        '[run]\nvariants = ["rag-answer@1"]\n\n[suites.likelihood]\ndatasets = ["qa.jsonl"]\n\n'
        '[suites.likelihood.metrics]\nreference_loss = { why = "the finetune stage compares it" }\n',
        encoding="utf-8",
    )
    settings = project.settings(finetune=QUICK, model={"max_input_tokens": INPUT_TOKENS}, evals={"config": suites})
    first = run_finetune(settings, embedder=embedder)
    second = run_finetune(settings, embedder=embedder)
    return {"project": project, "settings": settings, "first": first, "second": second}


def _env(project: Project) -> dict[str, str]:
    """The fixture's settings for a CLI or fresh process."""
    return (
        os.environ
        | project.env()
        | {
            "DOCS_ASSISTANT_EVALS__CONFIG": str(project.root / "evals" / "suites.toml"),
            "DOCS_ASSISTANT_MODEL__MAX_INPUT_TOKENS": str(INPUT_TOKENS),
            "DOCS_ASSISTANT_FINETUNE__MAX_SEQ_LENGTH": str(QUICK["max_seq_length"]),
            "HF_HUB_OFFLINE": "1",
        }
    )


def test_adapter_loss_is_clearly_below_the_base_model(trained: dict[str, Any]) -> None:
    scores = trained["first"].summary["scores"]
    base, candidate = scores["base"]["likelihood.reference_loss"], scores["candidate"]["likelihood.reference_loss"]
    assert candidate <= base * (1 - CLEAR_MARGIN), (base, candidate)
    metrics = trained["first"].summary["train"]["metrics"]
    assert metrics["heldout_loss"] < metrics["heldout_loss_base"] * (1 - CLEAR_MARGIN)
    assert trained["first"].passed
    assert trained["first"].decision.promote


def test_first_adapter_becomes_champion_and_a_candidate_that_does_not_beat_it_is_not_promoted(
    trained: dict[str, Any],
) -> None:
    from docs_assistant.registry import CANDIDATE, CHAMPION, ModelRegistry

    first, second = trained["first"].summary, trained["second"].summary
    assert first["promoted"]
    assert first["registered"]["version"] == 1
    assert second["registered"]["version"] == 2
    assert not second["promoted"]
    assert second["previous_champion"] == 1
    assert "does not beat champion" in second["reason"]
    assert trained["second"].passed  # it still beats the base model: registered, the stage passes
    registry = ModelRegistry(trained["settings"])
    assert registry.get(CHAMPION).version == 1
    assert registry.get(CANDIDATE).version == 2


def test_run_is_logged_with_its_lineage(trained: dict[str, Any]) -> None:
    from docs_assistant.registry import ModelRegistry, adapter_hash

    summary = trained["first"].summary
    info = ModelRegistry(trained["settings"]).get(1)
    assert info.adapter_hash == summary["adapter_hash"]
    assert (
        adapter_hash(trained["project"].root / "reports" / "finetune" / "adapter")
        == trained["second"].summary["adapter_hash"]
    )
    for key in ("git_sha", "base_model", "base_revision", "data.qa.version", "data.documents.version", "feedback_rows"):
        assert key in summary["lineage"]
    assert summary["lineage"]["prompt.rag-answer.v1.hash"] == summary["data"]["prompt"]["hash"]
    assert info.tags["prompt.rag-answer.v1.hash"] == summary["data"]["prompt"]["hash"]
    assert info.tags["git_sha"] == summary["lineage"]["git_sha"]
    assert {"tokens_per_s", "mfu", "peak_memory_mb"} <= summary["train"]["metrics"].keys()
    assert summary["train"]["metrics"]["tokens_per_s"] > 0
    report = trained["project"].root / "reports" / "finetune"
    assert (report / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not promoted" in (report / "summary.md").read_text(encoding="utf-8")


def _logits_script(out: Path) -> str:
    return f"""
import torch
from docs_assistant.config import load_settings
from docs_assistant.rag.llm import LocalLLM
from docs_assistant.registry import resolve_model_settings
settings = load_settings()
llm = LocalLLM(resolve_model_settings(settings), settings.paths.models_dir)
ids = llm.tokenizer("Question: How do I rotate an API token?\\nAnswer:", return_tensors="pt").input_ids
with torch.inference_mode():
    torch.save(llm.model(input_ids=ids).logits, {str(out)!r})
"""


def test_champion_loaded_from_the_registry_in_a_fresh_process_gives_identical_logits(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel

    from docs_assistant.rag.llm import LocalLLM

    project: Project = trained["project"]
    out = tmp_path / "logits.pt"
    env = _env(project) | {"DOCS_ASSISTANT_MODEL__ADAPTER_ALIAS": "champion"}
    subprocess.run([sys.executable, "-c", _logits_script(out)], env=env, check=True, cwd=Path.cwd())
    fresh = torch.load(out)

    settings = trained["settings"]
    first_dir = Path(trained["first"].summary["adapter_dir"])
    merged = LocalLLM(settings.model.model_copy(update={"adapter_path": first_dir}), settings.paths.models_dir)
    base = LocalLLM(settings.model, settings.paths.models_dir)
    ids = merged.tokenizer("Question: How do I rotate an API token?\nAnswer:", return_tensors="pt").input_ids
    with torch.inference_mode():
        here = merged.model(input_ids=ids).logits
        base_logits = base.model(input_ids=ids).logits
        unmerged_logits = PeftModel.from_pretrained(base.model, str(first_dir)).eval()(input_ids=ids).logits
    assert torch.equal(fresh, here)  # same weights, same ops: bit-identical
    torch.testing.assert_close(unmerged_logits, here, atol=1e-5, rtol=1e-5)  # merging only reorders float math
    assert not torch.allclose(here, base_logits)  # and the adapter did change the model


def test_a_candidate_that_does_not_beat_the_base_model_fails_the_stage(trained: dict[str, Any], tmp_path: Path) -> None:
    project: Project = trained["project"]
    overrides = json.dumps({"max_steps": 1, "learning_rate": 1e-9, "warmup_ratio": 0.0})
    env = _env(project)
    done = subprocess.run(
        [CLI, "finetune", "--overrides", overrides], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not beat base" in done.stderr
    summary = json.loads((project.root / "reports" / "finetune" / "summary.json").read_text(encoding="utf-8"))
    assert summary["registered"]["version"] == 3
    assert not summary["promoted"]


def test_bad_overrides_name_the_option(trained: dict[str, Any]) -> None:
    project: Project = trained["project"]
    env = _env(project)
    for bad, said in (("{not json", "--overrides"), ('{"rank": 0}', "finetune.rank")):
        done = subprocess.run([CLI, "finetune", "--overrides", bad], env=env, capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr


def test_the_committed_accelerate_config_trains_in_two_processes_and_registers_once(trained: dict[str, Any]) -> None:
    """`accelerate launch` with deploy/accelerate/multi-gpu.yaml; without GPUs it runs two CPU processes (gloo)."""
    from docs_assistant.registry import ModelRegistry

    project: Project = trained["project"]
    before = len(ModelRegistry(trained["settings"]).versions())
    config = Path("deploy/accelerate/multi-gpu.yaml").resolve()
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    launch = [accelerate, "launch", "--config_file", str(config), "--mixed_precision", "no", "--num_processes", "2"]
    done = subprocess.run(
        [*launch, "-m", "docs_assistant.cli", "finetune", "--overrides", json.dumps({"max_steps": 2})],
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((project.root / "reports" / "finetune" / "summary.json").read_text(encoding="utf-8"))
    assert summary["train"]["params"]["processes"] == 2
    assert len(ModelRegistry(trained["settings"]).versions()) == before + 1  # the main process alone registers
    assert done.stderr.count("registered version") == 1
