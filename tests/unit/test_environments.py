from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docs_assistant.cli import app
from docs_assistant.deploy.environments import (
    Environment,
    load_environment,
    load_environments,
    new_environment,
    promotion_chain,
)
from docs_assistant.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deploy" / "environments"


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    """A copy of the committed environment files, free to break."""
    directory = tmp_path / "environments"
    shutil.copytree(COMMITTED, directory)
    return directory


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def error_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_environments(directory)
    return str(err.value)


def test_committed_environments_load_and_chain_dev_staging_prod() -> None:
    environments = load_environments(COMMITTED)
    assert set(environments) == {"dev", "staging", "prod"}
    assert promotion_chain(environments) == ["dev", "staging", "prod"]
    assert [environments[n].replicas for n in ("dev", "staging", "prod")] == [1, 2, 2]
    assert [environments[n].approval for n in ("dev", "staging", "prod")] == [False, False, True]
    for env in environments.values():
        assert isinstance(env, Environment)
        assert env.gate.p50_ms > 0
        assert env.gate.min_rps > 0
        assert env.gate.max_startup_s > 0
    assert environments["prod"].gate.duration_s > environments["dev"].gate.duration_s
    assert load_environment("staging", COMMITTED) == environments["staging"]


def test_env_new_copies_text_with_a_new_port_and_no_promotion(envs: Path) -> None:
    source = (envs / "staging.toml").read_text(encoding="utf-8")
    before = {p.name: p.read_text(encoding="utf-8") for p in envs.iterdir()}
    result = CliRunner().invoke(app, ["env", "new", "uat", "--from", "staging", "--dir", str(envs)])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_text(encoding="utf-8") for p in envs.iterdir() if p.name != "uat.toml"} == before

    uat = load_environment("uat", envs)
    staging = load_environment("staging", envs)
    assert uat.port == 8104  # one above the highest port in use
    assert uat.promotes_to is None
    assert uat.model_dump(exclude={"name", "port", "promotes_to"}) == staging.model_dump(
        exclude={"name", "port", "promotes_to"}
    )
    text = (envs / "uat.toml").read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(source.splitlines(), text.splitlines(), strict=True) if a != b]
    assert len(changed) == 2
    port_comment = "  # published on the host; distinct per environment"
    assert changed[0] == (f"port = 8102{port_comment}", f"port = 8104{port_comment}")
    assert changed[1][0] == 'promotes_to = "prod"'
    assert changed[1][1].startswith('# promotes_to = "prod"')
    comments = [line for line in source.splitlines() if line.lstrip().startswith("#")]
    assert comments
    assert all(line in text.splitlines() for line in comments)
    assert promotion_chain(load_environments(envs)) == ["dev", "staging", "prod"]

    listed = CliRunner().invoke(app, ["env", "list", "--json", "--dir", str(envs)])
    assert listed.exit_code == 0, listed.output
    assert [e["name"] for e in json.loads(listed.output)] == ["dev", "staging", "prod", "uat"]
    shown = CliRunner().invoke(app, ["env", "show", "uat", "--dir", str(envs)])
    assert json.loads(shown.output)["port"] == 8104


def test_env_new_refuses_an_existing_name(envs: Path) -> None:
    before = (envs / "prod.toml").read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["env", "new", "prod", "--from", "staging", "--dir", str(envs)])
    assert result.exit_code == 2
    assert "prod.toml" in result.output
    assert "already exists" in result.output
    assert (envs / "prod.toml").read_text(encoding="utf-8") == before


def test_env_new_names_the_missing_source_and_the_known_ones(envs: Path) -> None:
    with pytest.raises(ConfigError) as err:
        new_environment("uat", "qa", envs)
    assert str(err.value).startswith(f"{envs / 'qa.toml'}: no such environment 'qa'; known: dev, prod, staging")
    assert not (envs / "uat.toml").exists()


def test_env_new_refuses_a_bad_name(envs: Path) -> None:
    with pytest.raises(ConfigError, match="'UAT' is not a valid environment name"):
        new_environment("UAT", "staging", envs)
    assert sorted(p.name for p in envs.iterdir()) == ["dev.toml", "prod.toml", "staging.toml"]


def test_unknown_key_names_file_and_field(envs: Path) -> None:
    edit(envs / "staging.toml", "[gate]\n", "[gate]\np90_ms = 3000\n")
    assert error_of(envs).startswith(f"{envs / 'staging.toml'}: gate.p90_ms: unknown key")


def test_name_in_the_file_is_refused(envs: Path) -> None:
    edit(envs / "dev.toml", "replicas = 1", 'name = "dev"\nreplicas = 1')
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: name: unknown key")


def test_percentiles_out_of_order(envs: Path) -> None:
    edit(envs / "staging.toml", "p95_ms = 5000", "p95_ms = 9000")
    assert error_of(envs).startswith(f"{envs / 'staging.toml'}: gate: percentiles out of order")


def test_negative_replicas(envs: Path) -> None:
    edit(envs / "prod.toml", "replicas = 2", "replicas = -1")
    assert error_of(envs).startswith(
        f"{envs / 'prod.toml'}: replicas: Input should be greater than or equal to 1; got -1"
    )


@pytest.mark.parametrize("memory", ["2 GB", "2G", "2gi", "0m", "1.5g", "5m"])
def test_bad_memory(envs: Path, memory: str) -> None:
    edit(envs / "dev.toml", 'memory = "2g"', f'memory = "{memory}"')
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: resources.memory: '{memory}' ")


def test_memory_in_bytes(envs: Path) -> None:
    edit(envs / "dev.toml", 'memory = "2g"', 'memory = "512m"')
    resources = load_environment("dev", envs).resources
    assert resources is not None
    assert resources.memory_bytes == 512 * 1024 * 1024


def test_wrong_types_are_not_coerced(envs: Path) -> None:
    edit(envs / "dev.toml", "port = 8101", 'port = "8101"')
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: port: Input should be a valid integer")


def test_duplicate_port(envs: Path) -> None:
    edit(envs / "staging.toml", "port = 8102", "port = 8101")
    assert error_of(envs).startswith(f"{envs / 'staging.toml'}: port: 8101 is already used by 'dev'")


def test_unknown_promotes_to(envs: Path) -> None:
    edit(envs / "staging.toml", 'promotes_to = "prod"', 'promotes_to = "production"')
    assert error_of(envs).startswith(
        f"{envs / 'staging.toml'}: promotes_to: unknown environment 'production'; known: dev, prod, staging"
    )


def test_promotion_cycle(envs: Path) -> None:
    edit(envs / "prod.toml", "approval = true", 'approval = true\npromotes_to = "dev"')
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: promotes_to: promotion cycle dev -> staging -> prod -> dev")


def test_bad_environment_file_name(envs: Path) -> None:
    shutil.copy(envs / "dev.toml", envs / "Dev_2.toml")
    edit(envs / "Dev_2.toml", "port = 8101", "port = 8109")
    assert error_of(envs).startswith(f"{envs / 'Dev_2.toml'}: name: 'Dev_2' is not a valid environment name")


def test_missing_environment_lists_the_known_ones(envs: Path) -> None:
    result = CliRunner().invoke(app, ["env", "show", "qa", "--dir", str(envs)])
    assert result.exit_code == 2
    assert "qa.toml" in result.output
    assert "known: dev, prod, staging" in result.output


def test_secrets_hold_names_not_values(envs: Path) -> None:
    edit(envs / "prod.toml", '"docs-assistant-prod-api-keys"', "'[\"s3cr3t token\"]'")
    assert error_of(envs).startswith(f"{envs / 'prod.toml'}: secrets: DOCS_ASSISTANT_SERVE__API_KEYS = ")


def test_credentials_are_refused_in_config(envs: Path) -> None:
    edit(envs / "dev.toml", "[config]", '[config]\nDOCS_ASSISTANT_IMAGE__PASSWORD = "hunter2"')
    assert error_of(envs).startswith(
        f"{envs / 'dev.toml'}: config: 'DOCS_ASSISTANT_IMAGE__PASSWORD' names a credential"
    )


def test_config_keys_are_env_var_names(envs: Path) -> None:
    edit(envs / "dev.toml", "[config]", '[config]\n"serve.port" = "1"')
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: config: 'serve.port' is not an environment variable name")


def test_cli_list_fails_with_status_2_naming_file_and_field(envs: Path) -> None:
    edit(envs / "staging.toml", "p95_ms = 5000", "p95_ms = -5")
    result = CliRunner().invoke(app, ["env", "list", "--dir", str(envs)])
    assert result.exit_code == 2
    assert "staging.toml: gate.p95_ms: Input should be greater than 0" in result.output.replace("\n", "")


def test_new_from_the_last_environment_keeps_its_approval(envs: Path) -> None:
    path = new_environment("prod-eu", "prod", envs)
    assert path == envs / "prod-eu.toml"
    env = load_environment("prod-eu", envs)
    assert (env.port, env.approval, env.promotes_to) == (8104, True, None)
    assert "promotes_to" not in path.read_text(encoding="utf-8")


def test_loadtest_takes_the_gate_of_the_named_environment_and_names_a_missing_one() -> None:
    # exits before any load is sent (locust is imported only once every input is valid)
    result = CliRunner().invoke(app, ["loadtest", "--env", "nowhere", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "deploy/environments/nowhere.toml: no such environment 'nowhere'; known: dev, prod, staging" in result.output


def test_committed_dev_answers_on_loopback_only_and_the_others_on_every_address() -> None:
    environments = load_environments(COMMITTED)
    assert environments["dev"].bind == "127.0.0.1"
    assert not environments["dev"].binds_all_addresses
    assert [environments[n].bind for n in ("staging", "prod")] == ["0.0.0.0", "0.0.0.0"]
    assert all(environments[n].binds_all_addresses for n in ("staging", "prod"))


def test_bind_defaults_to_every_address_when_the_file_has_no_key(envs: Path) -> None:
    edit(envs / "staging.toml", 'bind = "0.0.0.0"', "")
    assert load_environment("staging", envs).bind == "0.0.0.0"


@pytest.mark.parametrize("bind", ["localhost", "127.0.0.256", "0.0.0.0:8101", ""])
def test_bind_must_be_an_ip_address(envs: Path, bind: str) -> None:
    edit(envs / "dev.toml", 'bind = "127.0.0.1"', f'bind = "{bind}"')
    assert error_of(envs).startswith(
        f"{envs / 'dev.toml'}: bind: '{bind}' is not an IP address: use \"127.0.0.1\" (this machine only)"
    )


def test_bind_is_a_string_not_a_number(envs: Path) -> None:
    edit(envs / "dev.toml", 'bind = "127.0.0.1"', "bind = 127")
    assert error_of(envs).startswith(f"{envs / 'dev.toml'}: bind: Input should be a valid string")


@pytest.mark.parametrize(("bind", "normal"), [("::0", "::"), ("::1", "::1"), ("10.1.2.3", "10.1.2.3")])
def test_bind_takes_any_address_in_its_normal_form(envs: Path, bind: str, normal: str) -> None:
    edit(envs / "dev.toml", 'bind = "127.0.0.1"', f'bind = "{bind}"')
    env = load_environment("dev", envs)
    assert env.bind == normal
    assert env.binds_all_addresses is (normal == "::")


def test_loopback_bind_on_a_remote_docker_host_is_refused(envs: Path) -> None:
    edit(
        envs / "dev.toml",
        '# docker_host = "ssh://deploy@dev.example.com"',
        'docker_host = "ssh://deploy@dev.example.com"',
    )
    message = error_of(envs)
    assert message.startswith(f"{envs / 'dev.toml'}: ")
    assert "bind = '127.0.0.1' with the remote docker_host 'ssh://deploy@dev.example.com'" in message
    assert 'set bind = "0.0.0.0"' in message
    # a local socket is this machine: loopback is reachable there
    edit(
        envs / "dev.toml", 'docker_host = "ssh://deploy@dev.example.com"', 'docker_host = "unix:///var/run/docker.sock"'
    )
    assert load_environment("dev", envs).bind == "127.0.0.1"


def test_env_down_wants_a_name_or_all_and_not_both(envs: Path) -> None:
    neither = CliRunner().invoke(app, ["env", "down", "--dir", str(envs)])
    assert neither.exit_code == 2, neither.output
    assert "which environment? name one, or pass --all" in neither.output
    both = CliRunner().invoke(app, ["env", "down", "dev", "--all", "--dir", str(envs)])
    assert both.exit_code == 2, both.output
    assert "give an environment or --all, not both" in both.output


def test_env_down_of_a_kubernetes_environment_says_it_does_not_apply(envs: Path) -> None:
    # refused before any engine is asked: nothing on Docker belongs to a Kubernetes environment
    edit(envs / "staging.toml", 'target = "docker"', 'target = "kubernetes"')
    result = CliRunner().invoke(app, ["env", "down", "staging", "--dir", str(envs)])
    assert result.exit_code == 2, result.output
    output = result.output.replace("\n", "")
    assert f"{envs / 'staging.toml'}: target: 'kubernetes'; env down removes Docker swarm environments only" in output
    assert "kubectl delete -k deploy/kubernetes/overlays/staging" in output
