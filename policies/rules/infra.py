"""Rules on infrastructure: Pulumi resources (Helm releases, EKS, launch templates, GKE node pools) and the
Kubernetes objects that configure nodes (Karpenter EC2NodeClass, device-plugin ConfigMaps)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from vocabulary.labels import LABEL_SHARING, LABEL_WORKLOAD

from .findings import Finding, Settings
from .values import describe, get, mapping, quantity, sequence, show

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v4:Chart")
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]+)?$")


def check_helm_pinned(resource_type: str, name: str, props: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    if resource_type not in HELM_TYPES:
        return
    version = props.get("version")
    if not isinstance(version, str) or not EXACT_VERSION.match(version):
        chart = props.get("chart", "?")
        yield Finding(
            "helm-chart-pinned",
            f"{resource_type} {name}",
            f"chart {chart} has version {version!r}; pin an exact version (e.g. 1.14.1) in components/versions.py",
        )


def _imds_problem(options: Mapping[str, Any]) -> str | None:
    tokens, hops = options.get("httpTokens"), options.get("httpPutResponseHopLimit")
    if tokens != "required":
        return f"httpTokens is {tokens!r} (IMDSv1 allowed)"
    if hops is None:
        return "httpPutResponseHopLimit is not set (the EC2 default lets containers reach IMDS)"
    if quantity(hops) != 1:
        return f"httpPutResponseHopLimit is {show(hops)}: pods can reach the node role through IMDS"
    return None


def check_imds_resource(
    resource_type: str, name: str, props: Mapping[str, Any], settings: Settings
) -> Iterator[Finding]:
    del settings
    if resource_type != "aws:ec2/launchTemplate:LaunchTemplate":
        return
    problem = _imds_problem(mapping(props.get("metadataOptions")))
    if problem:
        yield Finding(
            "eks-imdsv2-hop-limit",
            f"{resource_type} {name}",
            f"launch template: {problem}; set metadataOptions httpTokens required, hop limit 1",
        )


def check_imds_object(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    if obj.get("kind") != "EC2NodeClass":
        return
    options = get(obj, "spec", "metadataOptions")
    if options is None:
        return  # Karpenter's defaults: required, hop limit 1
    defaults = {"httpTokens": "required", "httpPutResponseHopLimit": 1}
    problem = _imds_problem({**defaults, **mapping(options)})
    if problem:
        yield Finding("eks-imdsv2-hop-limit", describe(obj), f"spec.metadataOptions: {problem}")


def check_secrets_encryption(
    resource_type: str, name: str, props: Mapping[str, Any], settings: Settings
) -> Iterator[Finding]:
    del settings
    if resource_type == "gcp:container/cluster:Cluster":
        encryption = mapping(props.get("databaseEncryption"))
        if encryption.get("state") != "ENCRYPTED" or not encryption.get("keyName"):
            yield Finding(
                "cluster-secrets-encryption",
                f"{resource_type} {name}",
                "GKE Secrets are not encrypted with a Cloud KMS key: set databaseEncryption "
                "{state: ENCRYPTED, keyName: <key>}",
            )
        return
    if resource_type != "aws:eks/cluster:Cluster":
        return
    configs = [mapping(c) for c in (sequence(props.get("encryptionConfig")) or [props.get("encryptionConfig")])]
    if not any("secrets" in sequence(c.get("resources")) and get(c, "provider", "keyArn") for c in configs):
        yield Finding(
            "cluster-secrets-encryption",
            f"{resource_type} {name}",
            "EKS secrets are not envelope-encrypted: set encryptionConfig {resources: [secrets], provider.keyArn}",
        )


def _time_slicing_problem(labels: Mapping[str, Any], settings: Settings) -> str | None:
    if settings.environment == "prod":
        return "in a production stack"
    if labels.get(LABEL_WORKLOAD) == "inference":
        return "on an inference pool"
    return None


NODE_LABEL_PATHS = {
    # Where node labels live in the resources that create GPU nodes.
    "gcp:container/nodePool:NodePool": ("nodeConfig", "labels"),
    "aws:eks/nodeGroup:NodeGroup": ("labels",),
}


def _time_sliced(labels: Mapping[str, Any], node_config: Mapping[str, Any] | None = None) -> bool:
    strategies = [
        get(a, "gpuSharingConfig", "gpuSharingStrategy") for a in sequence((node_config or {}).get("guestAccelerators"))
    ]
    return labels.get(LABEL_SHARING) == "time-slicing" or "TIME_SHARING" in strategies


def check_time_slicing_resource(
    resource_type: str, name: str, props: Mapping[str, Any], settings: Settings
) -> Iterator[Finding]:
    path = NODE_LABEL_PATHS.get(resource_type)
    if path is None:
        return
    labels = mapping(get(props, *path))
    node_config = mapping(props.get("nodeConfig")) if resource_type.startswith("gcp:") else None
    problem = _time_slicing_problem(labels, settings)
    if _time_sliced(labels, node_config) and problem:
        yield Finding(
            "no-time-slicing-in-production",
            f"{resource_type} {name}",
            f"GPU time-slicing {problem}: no memory isolation between pods; use MIG or whole GPUs",
        )


def check_time_slicing_object(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    kind = obj.get("kind")
    if kind == "NodePool":  # Karpenter: the node labels are the template's
        labels = mapping(get(obj, "spec", "template", "metadata", "labels"))
        problem = _time_slicing_problem(labels, settings)
        if _time_sliced(labels) and problem:
            yield Finding(
                "no-time-slicing-in-production",
                describe(obj),
                f"NodePool creates time-sliced GPU nodes {problem}: no memory isolation; use MIG or whole GPUs",
            )
        return
    if kind != "ConfigMap":
        return
    data = mapping(obj.get("data"))
    problem = _time_slicing_problem(mapping(get(obj, "metadata", "labels")), settings)
    if problem and any("timeSlicing" in str(v) for v in data.values()):
        yield Finding(
            "no-time-slicing-in-production",
            describe(obj),
            f"device-plugin config enables timeSlicing {problem}: no memory isolation; use MIG or whole GPUs",
        )
