"""Every Helm value the platform sets exists in the pinned chart's default values (with its vendored subcharts),
on every stack and on the variants that install other charts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import STACKS, plan_of, plan_variant
from schemas import chart_values_file, unknown_helm_value_paths
from tools.offline import PlanResult, redact

REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))
RELEASE = "kubernetes:helm.sh/v3:Release"
# Keys the pinned values.yaml does not show, checked against another source:
KNOWN_ELSEWHERE = {
    # gpu-operator v26.7.0 templates/dcgm_exporter_config.yaml reads dcgmExporter.config.{create,name,data}; the
    # key is only a comment in values.yaml.
    "gpu-operator": ("dcgmExporter.config",),
    # The grafana subchart (12.11.1) is not in the reference set; these keys are in its values.yaml at tag
    # grafana-12.11.1 of grafana-community/helm-charts (nodeSelector, admin.*, dashboardProviders, dashboards).
    "kube-prometheus-stack": (
        "grafana.nodeSelector",
        "grafana.dashboardProviders",
        "grafana.dashboards",
    ),
    # dcgm-exporter 4.8.2 templates/metrics-configmap.yaml reads customMetrics (a comment in values.yaml).
    "dcgm-exporter": ("customMetrics",),
}


# Dependencies a chart pulls in that are not vendored into its reference folder, each with its own pinned values
# (kubeflow-trainer 2.3.0's Chart.yaml: jobset 0.12.0, under the key `jobset`).
DEPENDENCIES: dict[str, dict[str, tuple[str, str]]] = {"kubeflow-trainer": {"jobset": ("jobset", "0.12.0")}}


def variants(tmp_path: Path) -> list[PlanResult]:
    def cluster_autoscaler(c: dict[str, Any]) -> None:
        c["ml-platform:autoscaler"] = "cluster-autoscaler"

    def gke_dcgm_exporter(c: dict[str, Any]) -> None:
        c["ml-platform:gpu"] = {"gkeMetrics": "dcgm-exporter"}

    def overlay(c: dict[str, Any]) -> None:
        c.setdefault("ml-platform:scaling", {})["nodeOverlay"] = True

    for name in ("ca", "dcgm", "overlay"):
        (tmp_path / name).mkdir()
    return [
        plan_variant(tmp_path / "ca", "dev", cluster_autoscaler),
        plan_variant(tmp_path / "dcgm", "gke", gke_dcgm_exporter),
        plan_variant(tmp_path / "overlay", "prod", overlay),
    ]


def check(plan: PlanResult) -> list[str]:
    assert plan.error is None, plan.error
    problems = []
    for chart in plan.of_type(RELEASE):
        name, version = chart.inputs["name"], chart.inputs["version"]
        values = dict(redact(chart.inputs.get("values", {})))
        for key, (dep, dep_version) in DEPENDENCIES.get(name, {}).items():
            if isinstance(ours := values.pop(key, None), dict):
                # install/fullnameOverride are the parent's switches for the dependency, not the dependency's values
                dep_values = {k: v for k, v in ours.items() if k not in ("install", "fullnameOverride")}
                unknown_dep = unknown_helm_value_paths(dep_values, chart_values_file(dep, dep_version, REFERENCE_DIR))
                problems += [f"{name}: {key}.{path}" for path in unknown_dep]
        unknown = unknown_helm_value_paths(
            values, chart_values_file(name, version, REFERENCE_DIR), known_elsewhere=KNOWN_ELSEWHERE.get(name, ())
        )
        problems += [f"{name}: {path}" for path in unknown]
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_value_we_set_exists_in_the_pinned_chart(stack: str) -> None:
    assert check(plan_of(stack)) == []


def test_every_helm_value_of_the_variants_exists_in_the_pinned_chart(tmp_path: Path) -> None:
    plans = variants(tmp_path)
    charts = {r.inputs["name"] for plan in plans for r in plan.of_type(RELEASE)}
    assert {"cluster-autoscaler", "dcgm-exporter", "karpenter"} <= charts
    assert [problem for plan in plans for problem in check(plan)] == []


def test_the_checker_sees_subchart_keys_and_rejects_unknown_ones() -> None:
    values_file = chart_values_file("kube-prometheus-stack", "88.5.3", REFERENCE_DIR)
    # kube-state-metrics is a vendored subchart: its own keys are known, a misspelling is not.
    assert unknown_helm_value_paths({"kube-state-metrics": {"metricLabelsAllowlist": []}}, values_file) == []
    assert unknown_helm_value_paths({"kube-state-metrics": {"metricLabelAllowlist": []}}, values_file) == [
        "kube-state-metrics.metricLabelAllowlist"
    ]
