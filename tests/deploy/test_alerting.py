"""The alerting and dashboard files of deploy/observability, checked by the tools that will read them:
``promtool check rules`` and ``promtool test rules`` (a unit test per alert), ``amtool check-config``;
every metric the rules and the Grafana dashboard name is one graphrun exports, and every dashboard query is
valid PromQL. promtool and amtool come from this machine or Debian's ``prometheus`` and
``prometheus-alertmanager`` packages (tests/deploy/_debian.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from graphrun import metrics
from graphrun.settings import Settings
from tests.deploy._debian import ToolMissing, debian_tool

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "rules" / "graphrun.yml"
RULE_TESTS = OBSERVABILITY / "rules" / "tests" / "graphrun_test.yaml"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "graphrun.json"
ALERTMANAGER = OBSERVABILITY / "alertmanager.yml"
METRIC_NAME = re.compile(r"\bgraphrun_[a-z_]+\b")


def _tool(package: str, name: str) -> Path:
    try:
        return debian_tool(package, name)
    except ToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False)


def _exported() -> set[str]:
    """Every sample name graphrun's registry exposes (counters' ``_total``, histograms' series)."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"]}
    names: set[str] = set()
    family: Metric
    for family in metrics.REGISTRY.collect():
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_alert_rules_pass_promtool_check() -> None:
    result = _run(_tool("prometheus", "promtool"), "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_the_kubernetes_scrape_config_passes_promtool_and_reads_the_pods_annotations(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus-kubernetes.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    # Debian's Prometheus is built without the Kubernetes discovery: promtool checks everything else
    # (the relabelling above all) with a file discovery in its place.
    job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    del job["kubernetes_sd_configs"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = _run(_tool("prometheus", "promtool"), "check", "config", "--syntax-only", path)
    assert result.returncode == 0, result.stdout + result.stderr
    sources = {label for r in job["relabel_configs"] for label in r["source_labels"]}
    for annotation in ("scrape", "port", "path"):
        assert f"__meta_kubernetes_pod_annotation_prometheus_io_{annotation}" in sources


def test_each_alert_fires_and_stays_silent_in_promtools_unit_tests() -> None:
    result = _run(_tool("prometheus", "promtool"), "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load(RULE_TESTS.read_text())
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in _rules()}, "every alert has a test in which it fires"


def test_the_brief_s_alerts_are_all_there() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts == {
        "GraphrunHighErrorRate",
        "GraphrunHighLatency",
        "GraphrunQueueBacklog",
        "GraphrunSlowQueue",
        "GraphrunCircuitOpen",
        "GraphrunNoWorkerHeartbeat",
        "GraphrunWorkerHeartbeatStale",
        "GraphrunDatabasePoolSaturated",
        "GraphrunEventBusErrors",
    }
    for rule in _rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_the_rules_name_only_metrics_graphrun_exports() -> None:
    named = {name for rule in _rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert named, "the rules name graphrun's metrics"
    assert named - _exported() == set()


def test_the_dashboard_names_only_metrics_graphrun_exports_and_covers_them() -> None:
    named = {name for expr in _dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    exported = _exported()
    assert named - exported == set()
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in named}
    every = {
        re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in exported if n.startswith("graphrun_")
    }
    assert every - families == set(), "every metric graphrun exports is on the dashboard"


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool has no query checker of its own: the queries become recording rules, which it parses.
    concrete = [e.replace("$__rate_interval", "5m").replace("$graph_id", ".*") for e in _dashboard_exprs()]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(concrete)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run(_tool("prometheus", "promtool"), "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_provisioned_by_the_compose_observability_profile() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    provider = yaml.safe_load((OBSERVABILITY / "grafana" / "dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts["./observability/grafana/dashboards"] == path
    assert (OBSERVABILITY / "grafana" / "dashboards" / "graphrun.json").exists()
    dashboard = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "graph_id"}


def test_alertmanager_s_config_passes_amtool_and_sends_to_the_relay() -> None:
    result = _run(_tool("prometheus-alertmanager", "amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(ALERTMANAGER.read_text())
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert urls == [f"http://alert-relay:{Settings().alert_relay_port}/alerts"]
    relay = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["alert-relay"]
    assert relay["command"][0] == "alert-relay"
    assert "observability" in relay["profiles"]
