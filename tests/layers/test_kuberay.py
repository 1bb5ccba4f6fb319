"""KubeRay: the pinned operator chart without its CRDs, the CRDs applied from the pinned tag (so upgrades update
them), and the team namespaces' ingress for the operator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from components.kuberay import crd_urls
from components.versions import KUBERAY_OPERATOR
from conftest import plan_of, plan_variant

REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))
RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"


def test_the_crds_come_from_the_pinned_tag_where_the_reference_crds_were_read() -> None:
    """../shared/reference/SOURCES.tsv records the repository, tag and path of each pinned KubeRay CRD."""
    rows = [
        line.split("\t")
        for line in (REFERENCE_DIR / "SOURCES.tsv").read_text().splitlines()
        if line.startswith(f"crds/kuberay-v{KUBERAY_OPERATOR.version}/")
    ]
    assert len(rows) == 3  # RayCluster, RayJob, RayService (RayCronJob was not copied)
    urls = crd_urls(KUBERAY_OPERATOR.version)
    for _, repo, tag, _, path, *_ in rows:
        assert f"https://raw.githubusercontent.com/{repo}/{tag}/{path}" in urls
    assert len(urls) == 4 and any(u.endswith("ray.io_raycronjobs.yaml") for u in urls)


def test_the_operator_is_installed_without_its_crds_after_them() -> None:
    plan = plan_of("prod")
    [release] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kuberay-operator"]
    crds = plan.of_type(CONFIG_FILE)
    assert {c.inputs["file"] for c in crds} == set(crd_urls(KUBERAY_OPERATOR.version))
    assert release.inputs["skipCrds"] is True  # Helm would install crds/ once and never upgrade it
    assert {c.urn for c in crds} <= set(release.dependencies)
    values = release.inputs["values"]
    assert values["nodeSelector"]["ml-platform.io/role"] == "system"
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}  # restricted namespace
    assert values["metrics"]["serviceMonitor"]["enabled"] is True


def test_team_namespaces_let_the_operator_reach_the_ray_heads_dashboard_only() -> None:
    plan = plan_of("dev")
    policies = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"]
        for r in plan.registrations
        if isinstance(r.inputs, dict) and r.inputs.get("kind") == "NetworkPolicy"
    }
    for team in ("research", "applied"):
        spec = policies[(team, "allow-kuberay-operator")]
        assert spec == {
            "podSelector": {"matchLabels": {"ray.io/node-type": "head"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-system"}}}],
                    "ports": [{"protocol": "TCP", "port": 8265}],
                }
            ],
        }


def test_without_kuberay_no_operator_and_no_ingress_for_it(tmp_path: Path) -> None:
    def off(c: dict[str, Any]) -> None:
        c["ml-platform:kuberay"] = {"enabled": False}

    plan = plan_variant(tmp_path, "dev", off)
    assert not [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kuberay-operator"]
    assert not plan.of_type(CONFIG_FILE)
    assert not [r for r in plan.registrations if r.name.endswith("/allow-kuberay-operator")]
