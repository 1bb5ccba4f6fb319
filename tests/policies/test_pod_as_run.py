"""The GPU rules judge a pod as the cluster will run it (issue 9), in every layer: the rules (check.py and the pack),
the admission CEL, and the pack's remediation.

1. KubeRay's /dev/shm: exactly the pods KubeRay v1.7.0 gives a memory /dev/shm are exempt
   (ray-operator/controllers/ray/common/pod.go: BuildPod, addEmptyDir, makeEmptyDirVolume, findMemoryReqOrLimit).
2. A limit without a request is the request too (the API server's defaulting).
3. Mount paths as the container runtime compares them, and remediation that never crashes.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from policy_pack import analyze, of_policy, remediate

from components.admission import _at_shm, _maybe_shm, default_shm_match_condition, validation_expression
from pack import remediate_shm_volume
from rules import check_object
from rules.defaulting import effective_resources
from rules.mounts import clean_path, shm_path
from schemas import crd_schema_dir, evaluate_cel
from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.workloads import KUBERAY_VERSION

SIZE = "gpu-shm-size-limit"
MANDATORY = (SHM_RULE, LIMITS_RULE)
REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))


def findings(obj: dict[str, Any]) -> dict[str, list[str]]:
    """{rule: [messages]} of the rules, as check.py and the pack run them."""
    found: dict[str, list[str]] = {}
    for finding in check_object(obj):
        found.setdefault(finding.rule, []).append(finding.message)
    return found


def denied(obj: dict[str, Any]) -> list[str]:
    """The mandatory rules the admission CEL rejects on CREATE."""
    request = {"object": obj, "request": {"operation": "CREATE"}, "oldObject": None}
    return [r for r in MANDATORY if evaluate_cel(validation_expression(obj["kind"], r), request) is not True]


def verdict(obj: dict[str, Any]) -> list[str]:
    """The mandatory rules that fail; the rules and the admission CEL must agree."""
    rules = sorted(r for r in findings(obj) if r in MANDATORY)
    assert denied(obj) == rules, (rules, denied(obj))
    return rules


# ---------------------------------------------------------------- objects


def gpu_container(name: str = "ray-worker", memory: str | None = "64Gi", **changes: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "8"}, "limits": {"nvidia.com/gpu": 1}}
    if memory is not None:
        resources["limits"]["memory"] = memory
    return {"name": name, "image": "rayproject/ray:2.46.0-py311-gpu", "resources": resources, **changes}


def ray_pod_spec(*containers: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "priorityClassName": "training-critical",
        "nodeSelector": {"ml-platform.io/gpu": "a100-80gb"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": list(containers) or [gpu_container()],
    }
    if volumes is not None:
        spec["volumes"] = volumes
    return spec


def ray_cluster_spec(worker: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
    """A CPU head with its own /dev/shm and one GPU worker group with the given pod spec."""
    head = {
        "name": "ray-head",
        "image": "rayproject/ray:2.46.0-py311-gpu",
        "resources": {"limits": {"cpu": "4", "memory": "32Gi"}},
    }
    return {
        "rayVersion": "2.46.0",
        "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [head]}}},
        "workerGroupSpecs": [
            {
                "groupName": "gpu",
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 4,
                "rayStartParams": params or {},
                "template": {"spec": worker},
            }
        ],
    }


def ray_object(kind: str, worker: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
    cluster = ray_cluster_spec(worker, params)
    spec = {
        "RayCluster": cluster,
        "RayJob": {"entrypoint": "python train.py", "rayClusterSpec": cluster},
        "RayService": {"serveConfigV2": "applications: []", "rayClusterConfig": cluster},
    }[kind]
    return {"apiVersion": "ray.io/v1", "kind": kind, "metadata": {"name": "ray", "namespace": "research"}, "spec": spec}


def memory_volume(name: str, size: str | None = "16Gi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"medium": "Memory", **({"sizeLimit": size} if size else {})}}


RAY_KINDS = ("RayCluster", "RayJob", "RayService")


# ---------------------------------------------------------------- 1. KubeRay's /dev/shm, branch by branch


def test_the_model_is_the_pinned_kuberay_version() -> None:
    """vocabulary/workloads.py was read from pod.go at KUBERAY_VERSION: a new pin means reading it again."""
    versions = REFERENCE_DIR / "VERSIONS.md"
    if not versions.is_file():
        pytest.skip(f"{versions} not found (set REFERENCE_DIR)")
    row = next(line for line in versions.read_text().splitlines() if "`kuberay-operator`" in line)
    assert row.split("|")[4].strip().lstrip("v") == KUBERAY_VERSION
    crds = crd_schema_dir()
    if crds is not None:
        assert (crds / f"kuberay-v{KUBERAY_VERSION}").is_dir()


@pytest.mark.parametrize("kind", RAY_KINDS)
def test_ray_container_with_nothing_at_dev_shm_gets_kuberays(kind: str) -> None:
    """BuildPod: addEmptyDir(Containers[RayContainerIndex], "shared-mem", "/dev/shm", Memory)."""
    assert verdict(ray_object(kind, ray_pod_spec())) == []
    assert SIZE not in findings(ray_object(kind, ray_pod_spec()))  # sizeLimit = the 64Gi memory limit


@pytest.mark.parametrize("kind", RAY_KINDS)
@pytest.mark.parametrize("value", ["/tmp/plasma", ""])
def test_plasma_directory_in_ray_start_params_means_no_kuberay_shm(kind: str, value: str) -> None:
    """BuildPod skips the injection when rayStartParams has the key, whatever its value."""
    obj = ray_object(kind, ray_pod_spec(), {"plasma-directory": value})
    assert verdict(obj) == [SHM_RULE]
    assert "rayStartParams sets plasma-directory" in findings(obj)[SHM_RULE][0]
    # With its own memory /dev/shm the Ray container passes again.
    mounted = gpu_container(volumeMounts=[{"name": "dshm", "mountPath": "/dev/shm"}])
    assert (
        verdict(ray_object(kind, ray_pod_spec(mounted, volumes=[memory_volume("dshm")]), {"plasma-directory": value}))
        == []
    )


def test_plasma_directory_of_another_group_does_not_count() -> None:
    obj = ray_object("RayCluster", ray_pod_spec())
    obj["spec"]["headGroupSpec"]["rayStartParams"] = {"plasma-directory": "/tmp/plasma"}
    assert verdict(obj) == []


def test_the_head_group_is_a_ray_group_too() -> None:
    obj = ray_object("RayCluster", ray_pod_spec())
    obj["spec"]["headGroupSpec"]["template"]["spec"] = ray_pod_spec(gpu_container("ray-head"))
    assert verdict(obj) == []
    obj["spec"]["headGroupSpec"]["rayStartParams"] = {"plasma-directory": "/tmp/plasma"}
    assert verdict(obj) == [SHM_RULE]
    assert "spec.headGroupSpec.template.spec" in findings(obj)[SHM_RULE][0]


@pytest.mark.parametrize(
    ("volume", "fails"),
    [
        ({"name": "scratch", "emptyDir": {}}, True),
        (memory_volume("scratch"), False),
    ],
)
def test_something_at_exactly_dev_shm_is_kept(volume: dict[str, Any], fails: bool) -> None:
    """checkIfVolumeMounted: a mount at "/dev/shm" stops the injection: what is mounted there counts."""
    ray = gpu_container(volumeMounts=[{"name": "scratch", "mountPath": "/dev/shm"}])
    assert verdict(ray_object("RayJob", ray_pod_spec(ray, volumes=[volume]))) == ([SHM_RULE] if fails else [])


@pytest.mark.parametrize(
    ("volume", "fails"), [({"name": "scratch", "emptyDir": {}}, True), (memory_volume("scratch"), False)]
)
def test_dev_shm_with_a_slash_is_not_seen_by_kuberay(volume: dict[str, Any], fails: bool) -> None:
    """checkIfVolumeMounted compares strings: with "/dev/shm/" KubeRay adds its memory mount as well, and which of
    the two the runtime mounts last is not defined: both must be memory-backed."""
    ray = gpu_container(volumeMounts=[{"name": "scratch", "mountPath": "/dev/shm/"}])
    obj = ray_object("RayService", ray_pod_spec(ray, volumes=[volume]))
    assert verdict(obj) == ([SHM_RULE] if fails else [])


@pytest.mark.parametrize(
    ("volumes", "fails"),
    [
        ([memory_volume("shared-mem")], False),
        ([{"name": "shared-mem", "hostPath": {"path": "/mnt/scratch"}}], True),
        ([{"name": "shared-mem", "emptyDir": {}}], True),
        ([memory_volume("shared-mem"), {"name": "shared-mem", "emptyDir": {}}], True),  # two of that name
    ],
)
def test_an_existing_shared_mem_volume_is_the_one_kuberay_mounts(volumes: list[dict[str, Any]], fails: bool) -> None:
    """addEmptyDir creates the volume only when checkIfVolumeExists is false; otherwise it mounts the existing one."""
    obj = ray_object("RayCluster", ray_pod_spec(volumes=volumes))
    assert verdict(obj) == ([SHM_RULE] if fails else [])
    if fails and len(volumes) == 1:
        assert 'KubeRay 1.7.0 mounts "shared-mem" at /dev/shm' in findings(obj)[SHM_RULE][0]


def test_only_the_ray_container_gets_kuberays_shm() -> None:
    """utils.RayContainerIndex = 0: other GPU containers and init containers of the Ray pod get nothing."""
    sidecar = gpu_container("embedder")
    obj = ray_object("RayCluster", ray_pod_spec(gpu_container(), sidecar))
    assert verdict(obj) == [SHM_RULE]
    assert [m.split('"')[1] for m in findings(obj)[SHM_RULE]] == ["embedder"]
    spec = ray_pod_spec()
    spec["initContainers"] = [gpu_container("warmup")]
    assert verdict(ray_object("RayCluster", spec)) == [SHM_RULE]
    # A CPU Ray container does not lend its exemption to a GPU container after it.
    cpu_first = ray_pod_spec({"name": "ray-worker", "image": "rayproject/ray:2.46.0"}, gpu_container("gpu"))
    assert verdict(ray_object("RayCluster", cpu_first)) == [SHM_RULE]


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ({"limits": {"nvidia.com/gpu": 1, "memory": "64Gi"}}, None),
        ({"requests": {"memory": "32Gi"}, "limits": {"nvidia.com/gpu": 1}}, None),  # the request when no limit
        ({"requests": {"memory": "32Gi"}, "limits": {"nvidia.com/gpu": 1, "memory": "4Gi"}}, "sizeLimit 4Gi is below"),
        ({"limits": {"nvidia.com/gpu": 1}}, "has no sizeLimit"),
    ],
)
def test_kuberays_shm_is_sized_from_the_ray_containers_memory(resources: dict[str, Any], problem: str | None) -> None:
    """makeEmptyDirVolume: sizeLimit = findMemoryReqOrLimit (limit, else request, else none)."""
    obj = ray_object("RayCluster", ray_pod_spec({**gpu_container(), "resources": resources}))
    assert verdict(obj) == []
    messages = findings(obj).get(SIZE, [])
    if problem is None:
        assert messages == []
    else:
        assert len(messages) == 1 and problem in messages[0] and "KubeRay 1.7.0 sets it" in messages[0]


@pytest.mark.parametrize("kind", RAY_KINDS)
def test_remediation_gives_a_ray_container_without_kuberays_shm_its_own(kind: str) -> None:
    for params, volumes in (
        ({"plasma-directory": "/tmp/plasma"}, None),
        ({}, [{"name": "shared-mem", "hostPath": {"path": "/mnt/scratch"}}]),
    ):
        obj = ray_object(kind, ray_pod_spec(volumes=volumes), params)
        fixed = remediate_shm_volume(f"kubernetes:ray.io/v1:{kind}", obj)
        assert fixed is not None and verdict(fixed) == []
        root = (
            fixed["spec"] if kind == "RayCluster" else next(v for k, v in fixed["spec"].items() if k.startswith("ray"))
        )
        worker = root["workerGroupSpecs"][0]["template"]["spec"]
        assert worker["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
        if volumes:  # the hostPath volume stays for whoever else uses it; KubeRay now sees /dev/shm mounted
            assert worker["volumes"][0] == volumes[0]


# ---------------------------------------------------------------- 2. a limit alone is the request too


def test_effective_resources_copy_only_missing_requests() -> None:
    effective = effective_resources(
        {"requests": {"cpu": "1", "nvidia.com/gpu": 0}, "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 1}}
    )
    assert effective.requests == {"cpu": "1", "nvidia.com/gpu": 0, "memory": "8Gi"}
    assert effective.defaulted == {"memory"}
    assert effective_resources({}).requests == {}


def pod(resources: dict[str, Any], init: bool = False) -> dict[str, Any]:
    container = {
        "name": "trainer",
        "image": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        "resources": resources,
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    spec: dict[str, Any] = {"restartPolicy": "Never", "volumes": [memory_volume("dshm")]}
    spec["initContainers" if init else "containers"] = [container]
    if init:
        spec["containers"] = [{"name": "main", "image": "busybox"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train", "namespace": "research"}, "spec": spec}


@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize(
    ("limit", "fails"),
    [(1, False), ("2", False), ("2000m", False), ("500m", True), (0.5, True), (-1, True), ("abc", True)],
)
def test_a_gpu_limit_alone_is_checked_as_the_request_it_becomes(limit: Any, fails: bool, init: bool) -> None:
    """SetDefaults_Pod copies the limit to the request (containers and init containers); extended resources must
    then be whole numbers. What the rules require of a request, they require of a lone limit."""
    for resource in ("nvidia.com/gpu", "nvidia.com/mig-1g.10gb"):
        written = pod({"limits": {resource: limit}}, init)
        assert (LIMITS_RULE in verdict(written)) is fails, (resource, limit)
        # The same pod after the API server's defaulting (what a Pod's admission sees) gets the same verdict.
        defaulted = pod({"requests": {resource: limit}, "limits": {resource: limit}}, init)
        assert (LIMITS_RULE in verdict(defaulted)) is fails, (resource, limit)
    if fails:
        assert "(the API server copies it to the request)" in findings(written)[LIMITS_RULE][0]


def test_a_limit_alone_on_a_custom_resource_through_the_pack() -> None:
    obj = ray_object(
        "RayCluster", ray_pod_spec({**gpu_container(), "resources": {"limits": {"nvidia.com/gpu": "0.5"}}})
    )
    violations = of_policy(analyze([("kubernetes:ray.io/v1:RayCluster", "ray", obj)], None), LIMITS_RULE)
    assert [v.enforcement for v in violations] == ["mandatory"]
    assert "limits nvidia.com/gpu: 0.5 (the API server copies it to the request)" in violations[0].message


# ---------------------------------------------------------------- 3. mount paths and remediation edge cases


@pytest.mark.parametrize(
    ("path", "clean", "kind"),
    [
        ("/dev/shm", "/dev/shm", "shm"),
        ("/dev/shm/", "/dev/shm", "shm"),
        ("/dev/shm//", "/dev/shm", "shm"),
        ("//dev/shm", "/dev/shm", "shm"),  # Go's Clean, unlike POSIX normpath, folds a leading "//"
        ("/dev/./shm/.", "/dev/shm", "shm"),
        ("dev/shm", "/dev/shm", "shm"),  # the kubelet prefixes "/" to a relative path
        ("/dev/shm/../shm", "/dev/shm", "maybe"),  # ".." is not resolved by the policies
        ("/data/../dev/shm", "/dev/shm", "maybe"),
        ("/dev/shm/..", "/dev", "maybe"),
        ("/../dev/shm", "/dev/shm", "maybe"),
        ("/data/../tmp", "/tmp", "other"),  # names neither dev nor shm: certainly not /dev/shm
        ("/dev/shmx", "/dev/shmx", "other"),
        ("/dev", "/dev", "other"),
        ("/dev/shm/x", "/dev/shm/x", "other"),
    ],
)
def test_mount_paths_as_the_runtime_and_both_layers_read_them(path: str, clean: str, kind: str) -> None:
    assert clean_path(path) == clean
    assert shm_path(path) == kind
    mount = {"m": {"name": "x", "mountPath": path}}
    assert evaluate_cel(_at_shm("m"), mount) is (kind == "shm")
    assert evaluate_cel(_maybe_shm("m"), mount) is (kind != "other")


@pytest.mark.parametrize("path", ["/dev/shm/", "/dev/shm//", "//dev/shm", "/dev/./shm"])
def test_remediation_treats_every_spelling_of_dev_shm_as_one_path(path: str) -> None:
    bad = pod({"limits": {"nvidia.com/gpu": 1}})
    bad["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": path}]
    bad["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    fixed = remediate("kubernetes:core/v1:Pod", "train", bad, {SHM_RULE: "remediate"})
    assert fixed is not None
    assert fixed["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    # Converted in place, written as KubeRay and the API server's duplicate check compare it: no second mount.
    assert fixed["spec"]["containers"][0]["volumeMounts"] == [{"name": "scratch", "mountPath": "/dev/shm"}]
    assert verdict(fixed) == []


def shm_case(mounts: Any, volumes: Any) -> dict[str, Any]:
    obj = pod({"limits": {"nvidia.com/gpu": 1}})
    obj["spec"]["containers"][0]["volumeMounts"] = mounts
    obj["spec"]["volumes"] = volumes
    return obj


REMEDIATION_CASES = {
    "mount without a name": (
        [{"mountPath": "/dev/shm"}],
        [],
        [{"name": "dshm", "mountPath": "/dev/shm"}],
    ),
    "volume without a name": (
        [],
        [{"emptyDir": {"medium": "Memory"}}],
        [{"name": "dshm", "mountPath": "/dev/shm"}],
    ),
    "our name taken by a disk volume used elsewhere": (
        [{"name": "dshm", "mountPath": "/data"}],
        [{"name": "dshm", "emptyDir": {}}],
        [{"name": "dshm", "mountPath": "/data"}, {"name": "dshm-1", "mountPath": "/dev/shm"}],
    ),
    "our name taken by a disk volume nobody mounts": (
        [],
        [{"name": "dshm", "hostPath": {"path": "/mnt"}}],
        [{"name": "dshm-1", "mountPath": "/dev/shm"}],
    ),
    "mounts and volumes null": (None, None, [{"name": "dshm", "mountPath": "/dev/shm"}]),
    "mount naming no volume": (
        [{"name": "gone", "mountPath": "/dev/shm/"}],
        [],
        [{"name": "gone", "mountPath": "/dev/shm"}],
    ),
}


@pytest.mark.parametrize("name", sorted(REMEDIATION_CASES))
def test_remediation_edge_cases_end_in_a_correct_object(name: str) -> None:
    mounts, volumes, fixed_mounts = copy.deepcopy(REMEDIATION_CASES[name])
    bad = shm_case(mounts, volumes)
    assert SHM_RULE in findings(bad)
    fixed = remediate_shm_volume("kubernetes:core/v1:Pod", bad)
    assert fixed is not None
    assert fixed["spec"]["containers"][0]["volumeMounts"] == fixed_mounts
    assert verdict(fixed) == []


@pytest.mark.parametrize(
    ("mounts", "volumes", "message"),
    [
        # Two volumes of one name: nothing to pick safely.
        (
            [{"name": "dshm", "mountPath": "/dev/shm"}],
            [memory_volume("dshm"), {"name": "dshm", "emptyDir": {}}],
            'mounts "dshm" at /dev/shm, but the pod has 2 volumes of that name',
        ),
        # A ".." path that may be /dev/shm, on disk: not rewritten (it is not /dev/shm), reported.
        (
            [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "data", "mountPath": "/data/../dev/shm/x"}],
            [memory_volume("dshm"), {"name": "data", "emptyDir": {}}],
            'mounts "data" at "/data/../dev/shm/x" (a ".." path that may be /dev/shm: write it without "..")',
        ),
    ],
)
def test_remediation_edge_cases_it_cannot_fix_end_in_a_clear_finding(
    mounts: list[Any], volumes: list[Any], message: str
) -> None:
    bad = shm_case(mounts, volumes)
    fixed = remediate_shm_volume("kubernetes:core/v1:Pod", bad)
    after = fixed if fixed is not None else bad
    assert verdict(after) == [SHM_RULE]
    assert message in findings(after)[SHM_RULE][0]


@pytest.mark.parametrize(
    ("mounts", "volumes"),
    [
        ("dshm", []),
        (["dshm"], "dshm"),
        ([{"name": 5, "mountPath": 7}], [{"name": 5}]),
        ([{"name": "dshm", "mountPath": None}], [None, 3, {"name": None}]),
        ([{"name": ["x"], "mountPath": "/dev/shm"}], [{"name": {"a": 1}, "emptyDir": None}]),
        ([None, {"mountPath": "//dev//shm/"}], [{"name": "dshm", "emptyDir": "Memory"}]),
    ],
)
def test_malformed_mounts_and_volumes_are_findings_never_tracebacks(mounts: Any, volumes: Any) -> None:
    """check.py reads whatever YAML it is given; the pack gets whatever a program declares."""
    bad = shm_case(mounts, volumes)
    assert SHM_RULE in findings(bad)
    fixed = remediate_shm_volume("kubernetes:core/v1:Pod", bad)
    if fixed is not None:
        findings(fixed)  # judged again without a crash; fixed or still reported


def test_the_default_shm_mutation_leaves_any_spelling_of_dev_shm_alone() -> None:
    """The opt-in MutatingAdmissionPolicy adds /dev/shm only where nothing is (or may be) mounted there."""
    for path, mutated in (("/dev/shm/", False), ("//dev/shm", False), ("/dev/shm/../shm", False), ("/data", True)):
        obj = pod({"limits": {"nvidia.com/gpu": 1}})
        obj["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": path}]
        obj["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
        request = {"object": obj, "request": {"operation": "CREATE"}, "oldObject": None}
        assert evaluate_cel(default_shm_match_condition(), request) is mutated, path
