"""What each team namespace gets from the storage layer: its volume claim, its checkpoint ServiceAccount and the
ConfigMap that says where its checkpoints go. Plain functions: config facts in, dicts out."""

from __future__ import annotations

from typing import Any

import pulumi

from components.gpu_pools import PlatformFacts
from vocabulary.labels import MANAGED_BY
from vocabulary.storage import (
    CHECKPOINT_CONFIG,
    CHECKPOINT_PREFIX,
    CHECKPOINT_SERVICE_ACCOUNT,
    CHECKPOINT_URI_KEY,
    TEAM_VOLUME_CLAIM,
    TEAM_VOLUME_MOUNT,
)


def team_prefix(team: str) -> str:
    """The team's objects in the bucket: `teams/<team>/` (the trailing slash keeps team `a` out of `ab`)."""
    return f"{CHECKPOINT_PREFIX}{team}/"


def team_volume_claim(team: str, storage_class: str, size: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": TEAM_VOLUME_CLAIM, "namespace": team, "labels": dict(MANAGED_BY)},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        },
    }


def checkpoint_service_account(team: str) -> dict[str, Any]:
    # No annotation: EKS Pod Identity associations and GKE Workload Identity principals name the namespace and the
    # ServiceAccount, and no Google service account is impersonated.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": CHECKPOINT_SERVICE_ACCOUNT, "namespace": team, "labels": dict(MANAGED_BY)},
    }


def checkpoint_config(team: str, bucket_uri: pulumi.Input[str], region: str | None) -> dict[str, Any]:
    """`CHECKPOINT_URI` (s3://bucket/teams/<team>/ or gs://...), and on AWS the region of the bucket."""
    data: dict[str, Any] = {
        CHECKPOINT_URI_KEY: pulumi.Output.concat(bucket_uri, team_prefix(team)),
    }
    if region:
        data["AWS_REGION"] = region
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CHECKPOINT_CONFIG, "namespace": team, "labels": dict(MANAGED_BY)},
        "data": data,
    }


def team_storage_objects(
    team: str, facts: PlatformFacts, bucket_uri: pulumi.Input[str] | None, region: str | None
) -> list[dict[str, Any]]:
    objects = []
    if facts.shared_volume is not None:
        objects.append(team_volume_claim(team, *facts.shared_volume))
    if facts.checkpoints and bucket_uri is not None:
        objects += [checkpoint_service_account(team), checkpoint_config(team, bucket_uri, region)]
    return objects


def apply_team_storage(pod: dict[str, Any], container: dict[str, Any], facts: PlatformFacts) -> None:
    """What the platform's pod templates (the torch runtime, the teams' RayClusters) get in a team namespace: the
    team's volume at TEAM_VOLUME_MOUNT, and the checkpoint ServiceAccount with CHECKPOINT_URI in the environment."""
    if facts.shared_volume is not None:
        pod.setdefault("volumes", []).append(
            {"name": TEAM_VOLUME_CLAIM, "persistentVolumeClaim": {"claimName": TEAM_VOLUME_CLAIM}}
        )
        container.setdefault("volumeMounts", []).append({"name": TEAM_VOLUME_CLAIM, "mountPath": TEAM_VOLUME_MOUNT})
    if facts.checkpoints:
        pod["serviceAccountName"] = CHECKPOINT_SERVICE_ACCOUNT
        container.setdefault("envFrom", []).append({"configMapRef": {"name": CHECKPOINT_CONFIG}})
