"""deploy/'s files as the tests read them: the PromQL of the alert rules and the dashboard, and
promtool (Debian's `prometheus` package), which skips a test locally when it is missing and
fails it with CI set."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).parents[1] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "invsync.json"
# Grafana's interval variables, as Prometheus would be sent them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s"}
# Metrics the expressions may use that invsync does not export: Prometheus's own.
PROMETHEUS_METRICS = frozenset({"up"})
_METRIC = re.compile(r"\binvsync_[a-z0-9_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and promtool is missing: apt-get install -y prometheus")
        pytest.skip("promtool is missing (apt-get install -y prometheus)")
    return found


def run_promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_expressions() -> list[str]:
    """Every panel query's PromQL, Grafana's variables given values."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            found.append(expression)
    return found


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def invsync_metrics(expressions: list[str]) -> set[str]:
    """The invsync metric names the expressions read."""
    return {name for expression in expressions for name in _METRIC.findall(expression)}
