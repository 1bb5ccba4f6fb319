"""The plan summary's ML workload and storage lines, read from the planned resources (not from the config): what
the operators, runtimes, RayClusters, KServe, the shared filesystem and the checkpoint bucket will be."""

from __future__ import annotations

from typing import Any

from tools.invariants import PlanView
from vocabulary.storage import CHECKPOINT_SERVICE_ACCOUNT, TEAM_VOLUME_CLAIM


def _release(plan: PlanView, chart: str) -> dict[str, Any] | None:
    found = plan.release(chart)
    return found.inputs if found is not None else None


def operator_lines(plan: PlanView) -> list[str]:
    lines = []
    if (ray := _release(plan, "kuberay-operator")) is not None:
        clusters = []
        for c in plan.objects("RayCluster"):
            gpu = [f"0..{int(g['maxReplicas'])}" for g in c["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
            workers = f"GPU workers {', '.join(gpu)}" if gpu else "no GPU workers"
            clusters.append(f"{c['metadata']['namespace']}/{c['metadata']['name']} ({workers})")
        lines.append(
            f"  KubeRay operator {ray['version']} ({ray['namespace']}, CRDs applied from the pinned tag); RayClusters: "
            + (", ".join(sorted(clusters)) or "none")
        )
    if (trainer := _release(plan, "kubeflow-trainer")) is not None:
        runtimes = sorted(str(r["metadata"]["name"]) for r in plan.objects("ClusterTrainingRuntime"))
        lines.append(
            f"  Kubeflow Trainer {trainer['version']} with JobSet ({trainer['namespace']}); ClusterTrainingRuntimes: "
            + (", ".join(runtimes) or "none")
        )
    for operator in plan.of_type("kubernetes:kustomize/v2:Directory"):
        lines.append(
            f"  Training Operator v1 (PyTorchJob only) from {operator.inputs['directory']}/ (namespace kubeflow)"
        )
    kserve, cert_manager = _release(plan, "kserve-resources"), _release(plan, "cert-manager")
    if kserve is not None and cert_manager is not None:
        controller = kserve["values"]["kserve"]["controller"]
        serving = _release(plan, "kserve-runtime-configs")
        enabled = (
            sorted(
                name
                for name, settings in serving["values"]["kserve"]["servingruntime"].items()
                if isinstance(settings, dict) and not settings.get("disabled", True)
            )
            if serving is not None
            else []
        )
        ingress = controller["gateway"].get("ingressGateway", {}).get("className") or "none (cluster-local Services)"
        lines.append(
            f"  KServe {kserve['version']}, deploymentMode {controller['deploymentMode']}, after cert-manager "
            f"{cert_manager['version']} (CRDs {'on' if cert_manager['values']['crds']['enabled'] else 'off'}); "
            f"ClusterServingRuntimes enabled: {', '.join(enabled) or 'none'}; Ingress: {ingress}"
        )
    return ["ML workloads:", *lines] if lines else ["ML workloads: none"]


def storage_lines(plan: PlanView) -> list[str]:
    config = plan.config.storage
    lines = ["Storage:"]
    shared = config.shared_filesystem
    claims = sorted(
        (str(c["metadata"]["namespace"]), c)
        for c in plan.objects("PersistentVolumeClaim")
        if c["metadata"]["name"] == TEAM_VOLUME_CLAIM
    )
    if claims:
        spec = claims[0][1]["spec"]
        named = spec["storageClassName"]
        storage_class = next((c for c in plan.objects("StorageClass") if c["metadata"]["name"] == named), None)
        how = (
            f"StorageClass {spec['storageClassName']} ({storage_class['provisioner']}, reclaim "
            f"{storage_class['reclaimPolicy']})"
            if storage_class is not None
            else f"the cluster's StorageClass {spec['storageClassName']}"
        )
        lines.append(
            f"  shared filesystem {shared.type}: {how}; per team a {spec['accessModes'][0]} claim {TEAM_VOLUME_CLAIM} "
            f"of {spec['resources']['requests']['storage']} in " + ", ".join(ns for ns, _ in claims)
        )
    else:
        lines.append(f"  shared filesystem: {shared.type}")
    buckets = [
        r
        for r in plan.resources
        if r.type in ("aws:s3/bucket:Bucket", "gcp:storage/bucket:Bucket") and r.name.endswith("-checkpoints")
    ]
    for bucket in buckets:
        keep = "kept and protected on destroy" if bucket.protect else "deleted with the stack (not protected)"
        cloud = "S3" if bucket.type.startswith("aws") else "GCS"
        # the cloud names it: S3 after the prefix, Pulumi after the logical name on GCS
        named = f"{bucket.inputs['bucketPrefix']}<unique>" if cloud == "S3" else f"{bucket.name}-<unique>"
        identity = "EKS Pod Identity" if cloud == "S3" else "GKE Workload Identity"
        days, newest = config.checkpoints.noncurrent_version_days, config.checkpoints.newer_noncurrent_versions
        lines.append(
            f"  checkpoint bucket ({cloud}) {named}: versioned, encrypted, public access blocked, old versions "
            f"kept {days} days (and the {newest} newest), {keep}; per team ServiceAccount {CHECKPOINT_SERVICE_ACCOUNT} "
            f"reaches teams/<team>/ only ({identity}, no keys)"
        )
    if not buckets:
        lines.append("  checkpoint bucket: none")
    return lines
