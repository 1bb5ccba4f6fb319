"""KServe: cert-manager first, then the pinned kserve-crd, kserve-resources (Standard mode) and
kserve-runtime-configs, each waiting for the one before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.config.errors import ConfigError
from components.config.loading import load_platform_config
from conftest import plan_of, plan_variant, raw_config, stack_document

RELEASE = "kubernetes:helm.sh/v3:Release"
CHARTS = ("cert-manager", "kserve-crd", "kserve-resources", "kserve-runtime-configs")


def releases(plan: Any) -> dict[str, Any]:
    return {r.inputs["name"]: r for r in plan.of_type(RELEASE) if r.inputs["name"] in CHARTS}


def test_pinned_charts_in_order_each_after_the_one_it_needs() -> None:
    found = releases(plan_of("prod"))
    assert {name: (r.inputs["chart"], r.inputs["version"], r.inputs["namespace"]) for name, r in found.items()} == {
        "cert-manager": ("oci://quay.io/jetstack/charts/cert-manager", "v1.21.1", "cert-manager"),
        "kserve-crd": ("oci://ghcr.io/kserve/charts/kserve-crd", "v0.20.0", "kserve"),
        "kserve-resources": ("oci://ghcr.io/kserve/charts/kserve-resources", "v0.20.0", "kserve"),
        "kserve-runtime-configs": ("oci://ghcr.io/kserve/charts/kserve-runtime-configs", "v0.20.0", "kserve"),
    }
    # the controller's Certificate needs cert-manager's CRDs and webhook; its CRDs come from kserve-crd
    assert {found["cert-manager"].urn, found["kserve-crd"].urn} <= set(found["kserve-resources"].dependencies)
    # the ClusterServingRuntimes go through the controller's validating webhook (failurePolicy Fail)
    assert found["kserve-resources"].urn in found["kserve-runtime-configs"].dependencies
    # uninstalling kserve-crd deletes every InferenceService
    assert found["kserve-crd"].protect and not releases(plan_of("dev"))["kserve-crd"].protect


def test_standard_mode_without_knative_istio_or_ingress() -> None:
    values = releases(plan_of("dev"))["kserve-resources"].inputs["values"]["kserve"]
    controller = values["controller"]
    assert controller["deploymentMode"] == "Standard"  # the chart's default is Knative
    # the chart's default Ingress class is istio: no Ingress unless the stack names a class
    assert controller["gateway"] == {"disableIngressCreation": True}
    assert controller["nodeSelector"]["ml-platform.io/role"] == "system"
    assert values["certManager"] == {"enabled": True}


def test_an_ingress_class_turns_ingress_creation_on(tmp_path: Path) -> None:
    def nginx(c: dict[str, Any]) -> None:
        c["ml-platform:kserve"] = {"ingressClassName": "nginx"}

    values = releases(plan_variant(tmp_path, "dev", nginx))["kserve-resources"].inputs["values"]
    assert values["kserve"]["controller"]["gateway"] == {
        "disableIngressCreation": False,
        "ingressGateway": {"className": "nginx"},
    }


def test_cert_manager_with_its_crds_on_system_nodes() -> None:
    values = releases(plan_of("prod"))["cert-manager"].inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}  # off by default upstream
    for component in (values, values["webhook"], values["cainjector"], values["startupapicheck"]):
        assert component["nodeSelector"]["ml-platform.io/role"] == "system"
    assert values["prometheus"] == {"enabled": True, "servicemonitor": {"enabled": True}}


def test_only_the_configured_runtimes_are_enabled_and_huggingface_gets_shm() -> None:
    values = releases(plan_of("dev"))["kserve-runtime-configs"].inputs["values"]["kserve"]
    runtimes = values["servingruntime"]
    assert runtimes.pop("enabled") is True  # off by default upstream
    enabled = sorted(name for name, settings in runtimes.items() if not settings["disabled"])
    assert enabled == ["huggingfaceserver", "sklearnserver", "tritonserver", "xgbserver"]
    assert "vllmserver" in runtimes and runtimes["vllmserver"]["disabled"]  # its upstream image tag is `latest`
    assert runtimes["huggingfaceserver"]["devShm"] == {"enabled": True, "sizeLimit": "8Gi"}
    assert values["llmisvcConfigs"] == {"enabled": False}  # their CRDs are not installed


def test_the_kserve_namespace_is_skipped_by_kserves_own_pod_mutator() -> None:
    [ns] = [
        r.inputs
        for r in plan_of("dev").registrations
        if isinstance(r.inputs, dict)
        and r.inputs.get("kind") == "Namespace"
        and r.inputs["metadata"]["name"] == "kserve"
    ]
    assert ns["metadata"]["labels"]["control-plane"] == "kserve-controller-manager"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kserve_off(tmp_path: Path) -> None:
    def off(c: dict[str, Any]) -> None:
        c["ml-platform:kserve"] = {"enabled": False}

    assert not releases(plan_variant(tmp_path, "dev", off))


@pytest.mark.parametrize(
    ("kserve", "message"),
    [
        (
            {"runtimes": ["huggingfaceserver", "huggingfaceserver"]},
            'ml-platform:kserve.runtimes: got ["huggingfaceserver", "huggingfaceserver"]; each runtime once',
        ),
        ({"runtimes": ["vllm"]}, "ml-platform:kserve.runtimes[0]"),
        ({"shmSize": "lots"}, "ml-platform:kserve.shmSize"),
        ({"ingressClassName": "Nginx!"}, "ml-platform:kserve.ingressClassName"),
        ({"ingressClassName": "a..b"}, "ml-platform:kserve.ingressClassName"),
        ({"shmSize": "0"}, 'ml-platform:kserve.shmSize: got "0"; at least 1Gi'),
        ({"shmSize": 8}, "at least 1Gi (a memory size in bytes: 16Gi, not 16)"),
        ({"shmSize": "2Ti"}, "at most 1Ti"),
    ],
)
def test_bad_kserve_config_names_the_key(kserve: dict[str, Any], message: str) -> None:
    document = stack_document("dev")["config"]
    document["ml-platform:kserve"] = kserve
    with pytest.raises(ConfigError) as error:
        load_platform_config(raw_config(document))
    assert message in str(error.value)


def test_warnings_for_an_existing_cluster_and_no_runtimes() -> None:
    from components.config.rules import config_warnings

    document = stack_document("local")["config"]
    document["ml-platform:kserve"] = {"runtimes": []}
    warnings = config_warnings(load_platform_config(raw_config(document)))
    assert any("installs cert-manager" in w for w in warnings)
    assert any("kserve.runtimes: empty" in w for w in warnings)
