"""`docs-assistant registry retrain-due`: usable feedback in a real store against the champion's tag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.data.store import FEEDBACK, FeatureStore

pytestmark = pytest.mark.integration

#: (rating, correction, question, answer): the first three teach something, the rest do not
USABLE = [(1, None, "How do I install it?", "Run the installer."), (-1, "Use port 8443.", "Which port?", "Port 80.")]
USABLE += [(0, "Set RELAY_HOME.", "Where is the state?", None)]
UNUSABLE = [
    (-1, None, "Which port?", "Port 80."),  # a dislike without a correction has no target
    (1, None, "How do I install it?", ""),  # a like of an empty answer
    (1, "  ", "How do I install it?", "   "),  # blank correction and answer
    (1, None, None, "Run the installer."),  # no question (feedback ingested from data/feedback/)
    (-1, "Use port 8443.", "   ", "Port 80."),  # blank question
]


def add_feedback(project, rows: list[tuple], start: int = 0) -> None:
    records = [
        {
            "id": f"fb-{start + i}",
            "answer_id": f"ans-{start + i}",
            "rating": rating,
            "correction": correction,
            "created_at": datetime(2026, 11, 1, tzinfo=UTC),
            "content_hash": f"hash-{start + i}",
            "question": question,
            "answer": answer,
        }
        for i, (rating, correction, question, answer) in enumerate(rows)
    ]
    FeatureStore(project.settings().paths.store_uri).append_new(FEEDBACK, records)


def retrain_due(project, threshold: int, tmp_path: Path, **env: str) -> tuple[dict, str]:
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n", encoding="utf-8")
    env = project.env() | env
    env |= {"DOCS_ASSISTANT_FINETUNE__RETRAIN_FEEDBACK_ROWS": str(threshold), "GITHUB_OUTPUT": str(output)}
    result = CliRunner().invoke(app, ["registry", "retrain-due"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), output.read_text(encoding="utf-8")


def test_no_store_and_no_registry_is_not_due_and_creates_nothing(project, tmp_path: Path) -> None:
    report, output = retrain_due(project, 1, tmp_path)
    assert report == {"due": False, "usable_rows": 0, "trained_rows": 0, "new_rows": 0, "threshold": 1}
    assert output == "earlier=1\ndue=false\n"
    assert not (project.root / "var").exists()


def test_usable_feedback_below_the_threshold_is_not_due(project, tmp_path: Path) -> None:
    from docs_assistant.data.ingest import ingest

    ingest(project.settings())
    held_out = json.loads((project.data / "qa" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[0])
    # training leaves out feedback on a held-out question (it would leak the reference): it is not counted
    leaking = (1, "A correction.", "  " + held_out["question"].upper(), "An answer.")
    add_feedback(project, [*USABLE, *UNUSABLE, leaking])
    report, output = retrain_due(project, 4, tmp_path)
    assert report == {"due": False, "usable_rows": 3, "trained_rows": 0, "new_rows": 3, "threshold": 4}
    assert output.endswith("due=false\n")


def test_usable_feedback_at_the_threshold_is_due(project, tmp_path: Path) -> None:
    add_feedback(project, USABLE + UNUSABLE)
    report, output = retrain_due(project, 3, tmp_path)
    assert report == {"due": True, "usable_rows": 3, "trained_rows": 0, "new_rows": 3, "threshold": 3}
    assert output.endswith("due=true\n")
    off = project.env() | {"DOCS_ASSISTANT_FINETUNE__USE_FEEDBACK": "false"}  # feedback never trains: never due
    result = CliRunner().invoke(app, ["registry", "retrain-due"], env=off | {"GITHUB_OUTPUT": None})
    assert json.loads(result.stdout)["usable_rows"] == 0


@pytest.mark.parametrize("server", [False, True], ids=["state-dir-registry", "MLFLOW_TRACKING_URI"])
def test_rows_the_champion_was_trained_on_do_not_count(project, tmp_path: Path, server: bool) -> None:
    from mlflow import MlflowClient

    add_feedback(project, USABLE + UNUSABLE)
    db = (tmp_path / "server" if server else project.root / "var" / "mlflow") / "mlflow.db"
    db.parent.mkdir(parents=True)
    uri = f"sqlite:///{db}"
    env = {"MLFLOW_TRACKING_URI": uri} if server else {}
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = project.settings().registry.model_name
    client.create_registered_model(name)
    first = client.create_model_version(name, source=str(tmp_path), tags={"feedback_rows": "2"})
    client.create_model_version(name, source=str(tmp_path), tags={"feedback_rows": "0"})  # newer, not champion
    assert retrain_due(project, 1, tmp_path, **env)[0]["trained_rows"] == 0  # no champion: nothing was trained on
    client.set_registered_model_alias(name, "champion", first.version)

    report, _ = retrain_due(project, 2, tmp_path, **env)
    assert report == {"due": False, "usable_rows": 3, "trained_rows": 2, "new_rows": 1, "threshold": 2}
    add_feedback(project, USABLE[:1], start=100)
    report, output = retrain_due(project, 2, tmp_path, **env)
    assert report == {"due": True, "usable_rows": 4, "trained_rows": 2, "new_rows": 2, "threshold": 2}
    assert output.endswith("due=true\n")
