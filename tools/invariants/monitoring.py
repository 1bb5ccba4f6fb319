"""Monitoring invariants: the Prometheus operator's CRDs come before everything that needs them."""

from __future__ import annotations

from collections.abc import Iterator

from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView

MONITORING_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
# Charts that create ServiceMonitors at install time (or, for the GPU Operator, when it reconciles).
CHARTS_WITH_MONITORS = ("gpu-operator", "dcgm-exporter")


def check_crds_first(plan: PlanView) -> Iterator[Violation]:
    stack = plan.release("kube-prometheus-stack")
    for resource in plan.resources:
        obj = resource.object
        needs_crds = obj is not None and obj.get("kind") in MONITORING_KINDS
        chart = (
            str(resource.inputs.get("chart", "")).rsplit("/", 1)[-1]
            if resource.type.startswith("kubernetes:helm.sh/")
            else ""
        )
        if not (needs_crds or chart in CHARTS_WITH_MONITORS):
            continue
        what = f"{obj['kind']}/{obj['metadata']['name']}" if obj is not None else f"Helm release {resource.name}"
        if stack is None:
            yield Violation(
                "monitoring-crds-first",
                what,
                "needs the Prometheus operator's CRDs: kube-prometheus-stack is not in the plan",
            )
        elif stack.urn not in resource.dependencies:
            yield Violation(
                "monitoring-crds-first", what, "is not created after kube-prometheus-stack (which installs its CRD)"
            )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "monitoring-crds-first",
        "ServiceMonitors, PrometheusRules and the charts that create them come after the Prometheus operator's CRDs.",
        check_crds_first,
    ),
)
