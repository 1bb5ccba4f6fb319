"""components/kube.py, the registration every in-cluster layer uses: one naming scheme, the typed class of each
built-in kind, custom resources as CustomResource, and Helm releases with the settings every release shares."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from components.kube import _typed_class, logical_name
from conftest import STACKS, plan_of


def obj(kind: str, name: str, namespace: str | None = None) -> dict[str, object]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def test_logical_names_are_kind_namespace_and_name() -> None:
    assert logical_name(obj("Namespace", "ml-platform-system")) == "ns-ml-platform-system"
    assert logical_name(obj("ValidatingAdmissionPolicyBinding", "x")) == "vapb-x"
    assert logical_name(obj("NodePool", "train-spot")) == "nodepool-train-spot"
    # Namespaced objects of one kind and name in two namespaces stay apart.
    assert logical_name(obj("ResourceQuota", "gpu", "vision")) == "resourcequota-vision/gpu"
    assert logical_name(obj("ResourceQuota", "gpu", "nlp")) != logical_name(obj("ResourceQuota", "gpu", "vision"))
    # DNS names contain '-' but never '/': namespace a-b with name c is not namespace a with name b-c.
    assert logical_name(obj("ConfigMap", "c", "a-b")) != logical_name(obj("ConfigMap", "b-c", "a"))


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("v1", "Namespace", k8s.core.v1.Namespace),
        ("storage.k8s.io/v1", "StorageClass", k8s.storage.v1.StorageClass),
        ("apps/v1", "Deployment", k8s.apps.v1.Deployment),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", k8s.rbac.v1.RoleBinding),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
            k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
        ),
        ("karpenter.sh/v1", "NodePool", None),
        ("karpenter.k8s.aws/v1", "EC2NodeClass", None),
        ("jobset.x-k8s.io/v1alpha2", "JobSet", None),
        ("kueue.x-k8s.io/v1beta1", "ClusterQueue", None),
        ("v1", "NoSuchKind", None),
    ],
)
def test_built_in_kinds_get_their_typed_class_and_custom_resources_none(
    api_version: str, kind: str, expected: type | None
) -> None:
    assert _typed_class(api_version, kind) is expected


def test_registered_objects_reach_the_engine_as_their_kubernetes_type() -> None:
    types = {r.name: r.type for r in plan_of("dev").registrations if r.type.startswith("kubernetes:")}
    assert types["ns-ml-platform-system"] == "kubernetes:core/v1:Namespace"
    assert types["sc-gp3"] == "kubernetes:storage.k8s.io/v1:StorageClass"
    assert types["ec2nodeclass-cpu"] == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
    assert types["vap-ml-platform-gpu-pod"] == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_release_is_pinned_atomic_and_bounded(stack: str) -> None:
    for release in plan_of(stack).of_type("kubernetes:helm.sh/v3:Release"):
        inputs = release.inputs
        # A fixed release name: Pulumi would otherwise add a random suffix, and a rename reinstalls the chart.
        assert inputs["name"] == release.name
        assert inputs["name"] in (
            "karpenter-crd",
            "karpenter",
            "gpu-operator",
            "kube-prometheus-stack",
            "dcgm-exporter",
            "kueue",
            "kuberay-operator",
            "kubeflow-trainer",
            "cert-manager",
            "kserve-crd",
            "kserve-resources",
            "kserve-runtime-configs",
        )
        # A failed install is purged and a failed upgrade rolled back, inside 10 minutes; history is bounded.
        assert (inputs["atomic"], inputs["cleanupOnFail"], inputs["timeout"], inputs["maxHistory"]) == (
            True,
            True,
            600,
            10,
        )
        # kube-system exists on every cluster, and the platform creates its own namespaces (with Pod Security
        # labels): Helm creates none.
        assert inputs["namespace"] in (
            "kube-system",
            "gpu-operator",
            "monitoring",
            "kueue-system",
            "kuberay-system",
            "kubeflow-system",
            "cert-manager",
            "kserve",
        )
        assert inputs["createNamespace"] is False
        if inputs["chart"].startswith("oci://"):
            assert "repositoryOpts" not in inputs
        else:
            assert inputs["repositoryOpts"]["repo"].startswith("https://")
