"""Tests of the offline schema validation library in tests/schemas.py."""

from __future__ import annotations

import copy
import os
import pathlib
import time
from typing import Any

import pytest
import yaml

import schemas

REFERENCE_DIR = pathlib.Path(
    os.environ.get("REFERENCE_DIR", pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference")
)
KARPENTER_VALUES = REFERENCE_DIR / "chart-values" / "karpenter-1.14.1" / "values.yaml"


@pytest.fixture
def crd_dir() -> pathlib.Path:
    directory = schemas.crd_schema_dir()
    if directory is None:
        pytest.skip("set CRD_SCHEMA_DIR=../shared/reference/crds to validate custom resources")
    return directory


def namespace(name: str = "ml-team-a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "ml-platform"}},
    }


def deployment(memory: Any = "16Gi") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "inference-gateway", "namespace": "ml-team-a"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "gw"}},
            "template": {
                "metadata": {"labels": {"app": "gw"}},
                "spec": {
                    "containers": [
                        {
                            "name": "gw",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 8080}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1e3"},
                                "limits": {"cpu": 1, "memory": memory, "nvidia.com/gpu": "1"},
                            },
                        }
                    ]
                },
            },
        },
    }


# ---------------------------------------------------------------- built-in kinds


def test_valid_builtin_objects_pass() -> None:
    storage_class = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "gp3-encrypted"},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
    for obj in (namespace(), storage_class, deployment()):
        assert schemas.validate_builtin(obj, "1.35") == []
        assert schemas.validate_object(obj, "1.35") == []


def test_strict_mode_rejects_typo_field() -> None:
    obj = deployment()
    obj["spec"]["replica"] = obj["spec"].pop("replicas")
    errors = schemas.validate_builtin(obj, "1.35")
    assert any(e.startswith("spec:") and "'replica' was unexpected" in e for e in errors), errors


@pytest.mark.parametrize("memory", ["64 GB", "16GB ", "1.5.2Gi", "Gi", True])
def test_bad_quantity_fails(memory: Any) -> None:
    errors = schemas.validate_builtin(deployment(memory), "1.35")
    assert [e for e in errors if e.startswith("spec.template.spec.containers[0].resources.limits.memory:")], errors


@pytest.mark.parametrize("memory", ["16Gi", "500m", "1", 1, "1e3", 2.5, "+1.5E-3", "100k"])
def test_good_quantity_passes(memory: Any) -> None:
    assert schemas.validate_builtin(deployment(memory), "1.35") == []


def test_all_errors_are_reported_with_paths() -> None:
    obj = deployment("64 GB")
    obj["spec"]["replicas"] = "two"
    obj["metadata"]["name"] = "Inference_Gateway"
    errors = schemas.validate_builtin(obj, "1.35")
    assert len(errors) == 3, errors
    assert {e.split(":")[0] for e in errors} == {
        "spec.replicas",
        "metadata.name",
        "spec.template.spec.containers[0].resources.limits.memory",
    }


@pytest.mark.parametrize(
    "obj",
    [
        namespace("Team_A"),
        namespace("team.a"),  # a namespace name is a DNS label, not a subdomain
        {**deployment(), "metadata": {"name": "-gw", "namespace": "ml"}},
        {**deployment(), "metadata": {"name": "gw", "namespace": "ml.team"}},
        {**deployment(), "metadata": {"name": "x" * 254}},
        {**deployment(), "metadata": {"namespace": "ml"}},  # no name at all
        {**namespace(), "metadata": {"name": "a", "labels": {"team": "a/b"}}},
    ],
)
def test_bad_names_fail(obj: dict[str, Any]) -> None:
    errors = schemas.validate_builtin(obj, "1.35")
    assert any(e.startswith("metadata.") for e in errors), errors


def test_rbac_names_may_contain_colons() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "ml-platform:gpu-user"},
        "rules": [],
    }
    assert schemas.validate_builtin(role, "1.35") == []


@pytest.mark.parametrize(
    "api_version, kind",
    [
        ("v1", "Frobnicator"),
        ("karpenter.sh/v1", "NodePool"),
        ("apps/v1", "Pod"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),  # removed in 1.26
        ("apps.example.com/v1", "Deployment"),  # same first group label as apps, other group
    ],
)
def test_unknown_builtin_kind_fails(api_version: str, kind: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    errors = schemas.validate_builtin(obj, "1.35")
    assert len(errors) == 1 and "no built-in kind" in errors[0], errors


def test_removed_builtin_is_not_routed_to_crds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRD_SCHEMA_DIR", raising=False)
    obj = {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 2},
    }
    assert schemas.validate_object(obj, "1.25") == []
    assert "no built-in kind" in schemas.validate_object(obj, "1.35")[0]


def test_unsupported_kubernetes_version_raises() -> None:
    with pytest.raises(ValueError, match="no schemas for Kubernetes"):
        schemas.validate_builtin(namespace(), "1.99")


@pytest.mark.parametrize("k8s_version", ["1.33", "1.36"])
def test_validating_admission_policy(k8s_version: str) -> None:
    policy: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "gpu-limits-equal-requests"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["ray.io"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["rayclusters"],
                    }
                ]
            },
            "variables": [{"name": "head", "expression": "object.spec.headGroupSpec"}],
            "validations": [{"expression": "has(variables.head.template)", "message": "head template required"}],
        },
    }
    assert schemas.validate_builtin(policy, k8s_version) == []
    policy["spec"]["validations"][0]["expresion"] = policy["spec"]["validations"][0].pop("expression")
    assert schemas.validate_builtin(policy, k8s_version)


def test_speed_of_300_builtin_objects() -> None:
    objects = []
    for i in range(100):
        objects.append(namespace(f"team-{i}"))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cfg-{i}", "namespace": "ml"},
                "data": {"k": "v"},
            }
        )
        objects.append(deployment(f"{i + 1}Gi"))
    for obj in objects[:3]:  # warm-up: load schemas and build the validators
        schemas.validate_object(obj, "1.35")
    start = time.perf_counter()
    results = [schemas.validate_object(obj, "1.35") for obj in objects]
    elapsed = time.perf_counter() - start
    assert results == [[]] * 300
    assert elapsed < 5, f"{elapsed:.2f}s for 300 objects"


# ---------------------------------------------------------------- custom resources (pinned CRDs)


def node_pool() -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu"},
        "spec": {
            "template": {
                "metadata": {"labels": {"ml-platform/pool": "gpu"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g5", "g6"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": "720h",
                },
            },
            "limits": {"cpu": "1000", "nvidia.com/gpu": 64},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"},
        },
    }


def ec2_node_class() -> dict[str, Any]:
    discovery = [{"tags": {"karpenter.sh/discovery": "ml-platform"}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "gpu"},
        "spec": {
            "role": "KarpenterNodeRole-ml-platform",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {"volumeSize": "200Gi", "volumeType": "gp3"}}
            ],
        },
    }


def ray_container(name: str, cpu: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "rayproject/ray:2.52.0",
        "ports": [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"}],
        "livenessProbe": {"httpGet": {"path": "/", "port": 8265}},
        "resources": {"limits": {"cpu": cpu, "memory": "8Gi"}, "requests": {"cpu": cpu, "memory": "8Gi"}},
    }


def ray_cluster(cpu: Any = 2) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "ray-a", "namespace": "ml-team-a"},
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {
                "rayStartParams": {"dashboard-host": "0.0.0.0"},
                "template": {"spec": {"containers": [ray_container("head", cpu)]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "gpu",
                    "replicas": 0,
                    "minReplicas": 0,
                    "maxReplicas": 4,
                    "rayStartParams": {},
                    "template": {
                        "metadata": {"labels": {"team": "a"}},
                        "spec": {
                            "containers": [ray_container("worker", "4")],
                            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                        },
                    },
                }
            ],
        },
    }


def test_valid_node_pool_passes(crd_dir: pathlib.Path) -> None:
    assert schemas.validate_custom_resource(node_pool(), crd_dir) == []
    assert schemas.validate_object(node_pool(), "1.35") == []  # crd_dir from CRD_SCHEMA_DIR


def test_node_pool_unknown_field_fails(crd_dir: pathlib.Path) -> None:
    obj = node_pool()
    obj["spec"]["template"]["spec"]["expireAftr"] = "24h"
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert errors == [("spec.template.spec: Additional properties are not allowed ('expireAftr' was unexpected)")], (
        errors
    )


def test_node_pool_required_without_default_fails(crd_dir: pathlib.Path) -> None:
    obj = node_pool()  # disruption has a default, but consolidateAfter inside it has none
    del obj["spec"]["disruption"]["consolidateAfter"]
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.disruption: 'consolidateAfter' is a required property"
    ]
    del obj["spec"]["disruption"]
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_ec2_node_class_enum(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    assert schemas.validate_custom_resource(obj, crd_dir) == []
    obj["spec"]["instanceStorePolicy"] = "RAID1"
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert len(errors) == 1 and errors[0].startswith("spec.instanceStorePolicy:"), errors


def test_unserved_api_version_fails(crd_dir: pathlib.Path) -> None:
    obj = {**node_pool(), "apiVersion": "karpenter.sh/v1beta1"}
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert len(errors) == 1 and "not served" in errors[0] and "served: v1" in errors[0], errors


def test_unknown_custom_kind_fails(crd_dir: pathlib.Path) -> None:
    obj = {**node_pool(), "kind": "NodePools"}
    assert "no CRD for kind NodePools" in schemas.validate_custom_resource(obj, crd_dir)[0]


def test_valid_ray_cluster_passes(crd_dir: pathlib.Path) -> None:
    assert schemas.validate_custom_resource(ray_cluster(), crd_dir) == []


def test_ray_cluster_errors_deep_in_pod_template(crd_dir: pathlib.Path) -> None:
    obj = ray_cluster()
    worker = obj["spec"]["workerGroupSpecs"][0]
    worker["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "8 GB"
    worker["template"]["metadata"]["lables"] = {}
    del worker["maxReplicas"]  # has a default, so it is not really required
    del worker["groupName"]
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert errors == [
        "spec.workerGroupSpecs[0]: 'groupName' is a required property",
        ("spec.workerGroupSpecs[0].template.metadata: Additional properties are not allowed ('lables' was unexpected)"),
        (
            "spec.workerGroupSpecs[0].template.spec.containers[0].resources.limits.memory: "
            "'8 GB' is not a Kubernetes quantity (e.g. 16Gi, 500m, 1)"
        ),
    ], errors


@pytest.mark.parametrize(
    "cpu, ok", [(2, True), ("2", True), ("500m", True), (2.5, False), (True, False), ("two", False)]
)
def test_int_or_string(crd_dir: pathlib.Path, cpu: Any, ok: bool) -> None:
    obj = ray_cluster(cpu)
    obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = "dashboard"
    assert (schemas.validate_custom_resource(obj, crd_dir) == []) is ok


def test_list_map_keys_must_be_unique(crd_dir: pathlib.Path) -> None:
    obj = ray_cluster()
    ports = obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
    ports.append({"containerPort": 6379, "protocol": "TCP"})  # protocol defaults to TCP
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert len(errors) == 1 and "same list-map key" in errors[0], errors
    ports[-1]["protocol"] = "UDP"
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_custom_resource_metadata(crd_dir: pathlib.Path) -> None:
    cases = {
        "name": {"namespace": "ml"},
        "name:": {"name": "GPU"},
        "namespace:": {"name": "gpu", "namespace": "a.b"},
        "Additional properties": {"name": "gpu", "label": {"a": "b"}},
    }
    for expected, metadata in cases.items():
        errors = schemas.validate_custom_resource({**node_pool(), "metadata": metadata}, crd_dir)
        assert any(e.startswith("metadata") and expected in e for e in errors), errors


def test_duplicate_identical_crds_are_fine(crd_dir: pathlib.Path) -> None:
    # prometheus-operator v0.93.0 and kube-prometheus-stack 88.5.3 both pin ServiceMonitor.
    monitor: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "dcgm", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "dcgm-exporter"}},
            "endpoints": [{"port": "metrics", "interval": "30s"}],
        },
    }
    assert schemas.validate_custom_resource(monitor, crd_dir) == []
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert schemas.validate_custom_resource(monitor, crd_dir)


@pytest.mark.parametrize("strategy, ok", [("warn", True), ("Abort", True), ("drop", False)])
def test_go_regex_flags_in_crd_patterns(crd_dir: pathlib.Path, strategy: str, ok: bool) -> None:
    # PrometheusRule uses RE2's "^(?i)(abort|warn)?$", which Python's re rejects as written.
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "gpu", "namespace": "monitoring"},
        "spec": {
            "groups": [
                {
                    "name": "gpu",
                    "partial_response_strategy": strategy,
                    "rules": [{"alert": "GpuDown", "expr": "up == 0"}],
                }
            ]
        },
    }
    assert (schemas.validate_custom_resource(rule, crd_dir) == []) is ok


def test_missing_crd_dir_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRD_SCHEMA_DIR", raising=False)
    assert schemas.crd_schema_dir() is None
    with pytest.raises(schemas.SchemaUnavailable, match="CRD_SCHEMA_DIR"):
        schemas.validate_object(node_pool(), "1.35")
    monkeypatch.setenv("CRD_SCHEMA_DIR", "/nonexistent/crds")
    assert schemas.crd_schema_dir() is None


# ---------------------------------------------------------------- OpenAPI extensions (synthetic CRD)

SYNTHETIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["mode", "size"],
            "properties": {
                "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
                "size": {"type": "integer", "default": 1},
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "extra": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "string"}},
                },
                "object": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "env": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
            },
        },
    },
}


@pytest.fixture
def synthetic_crd_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SYNTHETIC_SCHEMA}},
                {"name": "v0", "served": False, "storage": False, "schema": {"openAPIV3Schema": SYNTHETIC_SCHEMA}},
            ],
        },
    }
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "widgets.yaml").write_text("---\n" + yaml.safe_dump(crd))
    return tmp_path


VALID_WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w"},
    "spec": {
        "mode": None,
        "port": "http",
        "extra": {"known": "x", "anything": [1]},
        "object": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}},
        "tags": ["a", "b"],
        "env": [{"name": "A"}, {"name": "B", "value": "1"}],
    },
}


@pytest.mark.parametrize(
    "path, value, error_path",
    [
        (None, None, None),
        (("spec", "mode"), "c", "spec.mode"),
        (("spec", "port"), 80, None),
        (("spec", "port"), 1.5, "spec.port"),
        (("spec", "extra", "known"), 1, "spec.extra.known"),
        (("spec", "object"), {"data": {}}, "spec.object"),  # embedded needs apiVersion and kind
        (("spec", "tags"), ["a", "a"], "spec.tags"),
        (("spec", "env"), [{"name": "A"}, {"name": "A", "value": "x"}], "spec.env"),
        (("spec", "size"), "big", "spec.size"),
        (("spec", "sise"), 2, "spec"),
        (("status",), {}, "(root)"),
    ],
)
def test_openapi_extensions(
    synthetic_crd_dir: pathlib.Path, path: tuple[str, ...] | None, value: Any, error_path: str | None
) -> None:
    obj = copy.deepcopy(VALID_WIDGET)
    if path:
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    errors = schemas.validate_custom_resource(obj, synthetic_crd_dir)
    assert {e.split(":")[0] for e in errors} == ({error_path} if error_path else set()), errors


def test_conflicting_duplicate_crds_fail(synthetic_crd_dir: pathlib.Path) -> None:
    crd = yaml.safe_load((synthetic_crd_dir / "nested" / "widgets.yaml").read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"] = []
    (synthetic_crd_dir / "other.yaml").write_text(yaml.safe_dump(crd))
    errors = schemas.validate_custom_resource(VALID_WIDGET, synthetic_crd_dir)
    assert len(errors) == 1 and "2 different Widget CRDs" in errors[0], errors


def test_missing_api_version_or_kind() -> None:
    for obj in ({"kind": "Namespace", "metadata": {"name": "a"}}, {"apiVersion": "v1"}):
        assert schemas.validate_object(obj, "1.35") == ["(root): apiVersion and kind must be non-empty strings"]


def test_not_served_version(synthetic_crd_dir: pathlib.Path) -> None:
    errors = schemas.validate_custom_resource({**VALID_WIDGET, "apiVersion": "example.com/v0"}, synthetic_crd_dir)
    assert len(errors) == 1 and "not served" in errors[0], errors


# ---------------------------------------------------------------- Helm values


def test_known_karpenter_values_pass() -> None:
    values = {
        "settings": {"clusterName": "x", "interruptionQueue": "q", "featureGates": {"spotToSpotConsolidation": True}},
        "replicas": 2,
        "terminationGracePeriodSeconds": 30,  # default null
        "controller": {"resources": {"requests": {"cpu": "1"}}, "env": [{"name": "A"}]},
        "tolerations": [{"operator": "Exists"}],
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/karpenter"}},
    }
    assert schemas.unknown_helm_value_paths(values, KARPENTER_VALUES) == []


def test_typo_in_helm_values_is_reported() -> None:
    assert schemas.unknown_helm_value_paths({"settings": {"clusterNmae": "x"}}, KARPENTER_VALUES) == [
        "settings.clusterNmae"
    ]
    assert schemas.unknown_helm_value_paths(
        {
            "controller": {"resource": {"limits": {"cpu": 1}}},
            "replica": 1,
            "settings": {"featureGates": {"nodeRepare": True}},
        },
        KARPENTER_VALUES,
    ) == ["controller.resource", "replica", "settings.featureGates.nodeRepare"]


def test_free_form_helm_maps_are_accepted() -> None:
    # nodeSelector defaults to {kubernetes.io/os: linux}: its keys are free-form nonetheless.
    values = {
        "nodeSelector": {"a": "b"},
        "podLabels": {"team": "ml"},
        "controller": {"securityContext": {"runAsNonRoot": True}},
    }
    assert schemas.unknown_helm_value_paths(values, KARPENTER_VALUES) == []
    assert schemas.unknown_helm_value_paths(values, KARPENTER_VALUES, free_form_keys=()) == [
        "nodeSelector.a",
        "controller.securityContext.runAsNonRoot",
    ]


def test_empty_chart_values_take_no_values() -> None:
    path = schemas.chart_values_file("kserve-crd", "v0.20.0", REFERENCE_DIR)
    assert schemas.unknown_helm_value_paths({"foo": {"bar": 1}}, path) == ["foo"]


def test_chart_values_file() -> None:
    assert schemas.chart_values_file("karpenter", "1.14.1", REFERENCE_DIR) == KARPENTER_VALUES
    with pytest.raises(FileNotFoundError, match=r"karpenter 9\.9\.9"):
        schemas.chart_values_file("karpenter", "9.9.9", REFERENCE_DIR)
