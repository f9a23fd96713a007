"""docker-compose.yml, as far as a machine without a Docker engine can check it: it holds to the
compose specification's JSON schema (the one check-jsonschema ships), every invsync service's
command is a real subcommand whose options parse, the environment it gives is one invsync
accepts with the example configuration it mounts, and every file it mounts is in the checkout.
(The image's install is checked in tests/integration/test_dockerfile.py.)"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from infrastructure.config import load_config
from infrastructure.settings import Settings
from interfaces.cli import app

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(command), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_compose_file_holds_to_the_compose_specification():
    checked = _validate(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_compose_file_breaking_the_specification_is_refused(tmp_path):
    broken = COMPOSE.read_text().replace(
        "{condition: service_completed_successfully}", "{condition: when_it_feels_like_it}"
    )
    assert broken != COMPOSE.read_text()
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken)
    checked = _validate(path)
    assert checked.returncode == 1
    assert "when_it_feels_like_it" in checked.stdout


def _invsync_services() -> dict[str, list[str]]:
    services = _compose()["services"]
    return {
        name: service["command"]
        for name, service in services.items()
        if service.get("build") == "."
    }


def test_the_stack_runs_the_migration_api_workers_and_projector_and_monitoring_on_a_profile():
    commands = {name: command[1:3] for name, command in _invsync_services().items()}
    assert commands == {
        "migrate": ["migrate"],
        "api": ["run", "--no-workers"],
        "worker": ["worker", "--metrics-port"],
        "projector": ["project", "--metrics-port"],
    }
    services = _compose()["services"]
    assert {name for name, s in services.items() if s.get("profiles") == ["monitoring"]} == {
        "prometheus",
        "grafana",
    }


@pytest.mark.parametrize("service", ["migrate", "api", "worker", "projector"])
def test_each_services_command_is_an_invsync_command_whose_options_parse(service):
    command = _invsync_services()[service]
    assert command[0] == "invsync"
    parsed = _parsed(command)
    assert parsed.params or command == ["invsync", "migrate"]  # options parsed, not ignored
    if "--metrics-port" in command:
        assert parsed.params["metrics_port"] == int(command[command.index("--metrics-port") + 1])


def _parsed(command: list[str]) -> Any:
    """The click context of `command` parsed as the `invsync` CLI would, without running it."""
    group = typer.main.get_command(app)
    context = group.make_context("invsync", list(command[1:]))
    name, *options = command[1:]
    subcommand = group.get_command(context, name)  # type: ignore[attr-defined]
    assert subcommand is not None, f"no invsync {name}"
    return subcommand.make_context(name, options, parent=context)


@pytest.mark.parametrize(
    "command",
    [["invsync", "worker", "--metric-port", "9101"], ["invsync", "worker", "--threads", "0"]],
)
def test_a_command_with_an_option_invsync_does_not_take_is_refused(command):
    with pytest.raises(Exception, match=r"metric-port|greater than or equal to 1"):
        _parsed(command)


def _environment() -> dict[str, str]:
    """The invsync services' environment as compose gives it with nothing set: each
    `${NAME:-default}` at its default."""
    environment = _compose()["x-invsync"]["environment"]
    return {name: _DEFAULTED.sub(r"\2", str(value)) for name, value in environment.items()}


def test_the_environment_and_the_example_configuration_start_invsync_with_an_admin_token():
    environment = _environment()
    settings = Settings.from_env(environment)
    assert (settings.metrics_host, settings.http_host) == ("0.0.0.0", "0.0.0.0")
    [mount] = _compose()["x-invsync"]["volumes"]
    source, target, _ = mount.split(":")
    assert Path(target) == settings.config_path
    config = load_config(ROOT / source, environment)
    [token] = config.api_tokens
    default = environment["INVSYNC_API_TOKEN"]
    assert token.sha256 == hashlib.sha256(default.encode()).hexdigest()
    assert token.scopes == ("admin",)
    assert [channel.id for channel in config.channels] == ["erp"]


def test_every_file_the_stack_mounts_is_in_the_checkout():
    mounted = [
        volume.split(":")[0]
        for service in [_compose()["x-invsync"], *_compose()["services"].values()]
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert len(mounted) >= 5
    for path in mounted:
        assert (ROOT / path).exists(), path
