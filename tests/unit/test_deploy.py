"""deploy/: the alert rules and Prometheus's configuration pass promtool, the rules' unit tests
(each alert fires on the series that should fire it, and stays quiet on the others) pass, and
the Grafana dashboard holds to its schema with every query parsing as PromQL. (That every metric
they name is one invsync exports is checked against live processes: test_metrics.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.deploy_files import (
    DEPLOY,
    alert_expressions,
    dashboard,
    dashboard_expressions,
    run_promtool,
)

SCHEMA = Path(__file__).parents[1] / "fixtures" / "grafana_dashboard.schema.json"


def test_the_alert_rules_pass_promtools_check():
    checked = run_promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_each_alert_fires_on_its_series_and_stays_quiet_on_the_others():
    tested = run_promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing():
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == alerts


def test_the_prometheus_configuration_passes_promtools_check():
    checked = run_promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_holds_to_its_schema_with_distinct_panels():
    found = dashboard()
    jsonschema.validate(found, json.loads(SCHEMA.read_text()))
    ids = [panel["id"] for panel in found["panels"]]
    assert len(ids) == len(set(ids))
    places = [(panel["gridPos"]["x"], panel["gridPos"]["y"]) for panel in found["panels"]]
    assert len(places) == len(set(places))


def test_a_dashboard_with_a_misspelt_key_is_refused_by_the_schema():
    found = dashboard()
    found["panels"][0]["targets"][0]["exp"] = found["panels"][0]["targets"][0].pop("expr")
    with pytest.raises(jsonschema.ValidationError, match="expr"):
        jsonschema.validate(found, json.loads(SCHEMA.read_text()))


def _as_rules(expressions: list[str], folder: Path) -> str:
    """A rules file recording each expression, so promtool parses them."""
    rules = [{"record": f"check:{n}", "expr": e} for n, e in enumerate(expressions)]
    path = folder / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return str(path)


def test_every_dashboard_query_parses_as_promql(tmp_path):
    expressions = dashboard_expressions()
    assert len(expressions) >= 13
    checked = run_promtool("check", "rules", _as_rules(expressions, tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_query_that_does_not_parse_is_caught(tmp_path):
    checked = run_promtool("check", "rules", _as_rules(["sum by (channel (x)"], tmp_path))
    assert checked.returncode != 0
    assert "parse error" in checked.stdout + checked.stderr


def test_the_alerts_and_dashboard_cover_the_consistency_targets_and_stuck_work():
    everything = " ".join(alert_expressions() + dashboard_expressions())
    for name in (
        "invsync_consistency_window_seconds_bucket",
        "invsync_consistency_target_seconds",
        "invsync_consistency_breaches_total",
        "invsync_outbox_oldest_seconds",
        "invsync_dead_letters",
        "invsync_projection_lag_seconds",
        "invsync_channel_breaker_open",
        "invsync_discrepancies_oldest_open_seconds",
    ):
        assert name in everything
