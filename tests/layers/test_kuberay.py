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


def ray_cluster(plan: Any, namespace: str) -> dict[str, Any]:
    [cluster] = [
        r.inputs
        for r in plan.registrations
        if r.type == "kubernetes:ray.io/v1:RayCluster" and r.inputs["metadata"]["namespace"] == namespace
    ]
    return dict(cluster)


def test_a_teams_shared_ray_cluster_has_the_field_guides_defaults() -> None:
    cluster = ray_cluster(plan_of("dev"), "research")
    meta, spec = cluster["metadata"], cluster["spec"]
    # on the team's queue, as an elastic workload (Kueue refuses an autoscaling RayCluster otherwise)
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    assert meta["annotations"] == {"kueue.x-k8s.io/elastic-job": "true"}
    assert spec["enableInTreeAutoscaling"] is True and spec["rayVersion"] == "2.52.0"
    head = spec["headGroupSpec"]
    assert head["rayStartParams"] == {"num-cpus": "0"}  # the head schedules no tasks
    head_pod = head["template"]["spec"]
    # on Karpenter's CPU pool (it scales), not the fixed system nodes
    assert head_pod["nodeSelector"] == {"ml-platform.io/role": "cpu-workers"} and "tolerations" not in head_pod
    assert not [k for k in head_pod["containers"][0]["resources"]["limits"] if k.startswith("nvidia.com")]
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"gpu", "cpu"}
    gpu = groups["gpu"]
    assert "replicas" not in gpu  # the autoscaler's
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == (0, 8)
    pod = gpu["template"]["spec"]
    # the model too: Kueue then cannot pick another model's flavor when the A100 quota runs out
    assert pod["nodeSelector"] == {"ml-platform.io/pool": "train-a100", "ml-platform.io/gpu": "a100-40gb"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    [ray] = pod["containers"]
    assert (
        ray["resources"]["requests"]
        == ray["resources"]["limits"]
        == {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": 1}
    )
    # explicit memory /dev/shm; the team's shared volume; its checkpoint identity and CHECKPOINT_URI
    assert ray["volumeMounts"] == [
        {"name": "shared-mem", "mountPath": "/dev/shm"},
        {"name": "team-data", "mountPath": "/mnt/team-data"},
    ]
    assert pod["volumes"] == [
        {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        {"name": "team-data", "persistentVolumeClaim": {"claimName": "team-data"}},
    ]
    assert pod["serviceAccountName"] == "checkpoints"
    assert ray["envFrom"] == [{"configMapRef": {"name": "checkpoints"}}]
    assert pod["priorityClassName"] == "development"
    assert groups["cpu"]["template"]["spec"]["nodeSelector"] == {"ml-platform.io/role": "cpu-workers"}


def test_the_ray_cluster_passes_the_mandatory_policies_as_check_py_reads_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", **ray_cluster(plan_of("dev"), "research")}
    manifest = tmp_path / "ray.yaml"
    manifest.write_text(yaml.safe_dump(cluster))
    project = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(project / "policies" / "check.py"), str(manifest)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mig_workers_request_their_slice_and_tell_ray_how_many() -> None:
    from components.gpu_pools import platform_facts, resolve_gpu_pools
    from components.ray_clusters import team_ray_cluster
    from conftest import H100_MIG, platform_config

    cluster_config = {"cloud": "aws", "name": "ml", "region": "us-east-1"}
    teams = [{"name": "a", "rayCluster": {"gpusPerWorker": 2}}]
    cfg = platform_config(cluster_config, [H100_MIG], teams=teams)
    cluster = team_ray_cluster(cfg.teams[0], resolve_gpu_pools(cfg), platform_facts(cfg))
    assert cluster is not None
    [gpu] = [g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/mig-1g.10gb"] == 2 and gpu["rayStartParams"] == {"num-gpus": "2"}


def test_a_ray_cluster_change_replaces_it_and_the_crds_are_kept() -> None:
    """Kueue and Ray's autoscaler edit the cluster's templates (an in-place update would conflict or be refused);
    deleting a CRD deletes every object of its kind."""
    plan = plan_of("prod")
    [cluster] = [r for r in plan_of("dev").registrations if r.type == "kubernetes:ray.io/v1:RayCluster"]
    assert cluster.replace_on_changes == ["*"] and cluster.delete_before_replace is True
    crds = plan.of_type(CONFIG_FILE)
    assert crds and all(c.retain_on_delete and c.protect for c in crds)  # prod: the cluster is protected


def test_a_ray_cluster_bigger_than_the_teams_quota_warns() -> None:
    import copy

    import yaml as yaml_module

    from components.config.loading import load_platform_config
    from components.config.rules import config_warnings
    from conftest import raw_config

    document = yaml_module.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text())["config"]
    document = copy.deepcopy(document)
    assert not [w for w in config_warnings(load_platform_config(raw_config(document))) if "RayCluster" in w]
    del document["ml-platform:teams"][0]["resources"]  # back to 64 CPUs and 256Gi
    [memory] = [w for w in config_warnings(load_platform_config(raw_config(document))) if "needs more memory" in w]
    # 8.5Gi head (with the autoscaler sidecar) + 4 x 32Gi CPU workers + n x 64Gi <= 256Gi: n = 1
    assert "research's RayCluster at its maxima (8 GPU and 4 CPU workers)" in memory and "1 GPU workers fit" in memory
