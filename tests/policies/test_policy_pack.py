"""The Pulumi policy pack (policies/pack.py) through the real analyzer protocol (tests/policy_pack.py)."""

from __future__ import annotations

import copy
import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from policy_pack import (
    PACK_DIR,
    AnalyzerSession,
    PolicyConfigError,
    Violation,
    analyze,
    decode_properties,
    encode_properties,
    mandatory,
    of_policy,
    remediate,
)
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from pack import remediate_shm_volume
from rules import check_object, kubernetes_object
from tools.offline import PROJECT_DIR, read_stack_file, run_stack, unwrap

POD = "kubernetes:core/v1:Pod"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PYTORCHJOB = "kubernetes:kubeflow.org/v1:PyTorchJob"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
SHM = "gpu-shm-memory-volume"
LIMITS = "gpu-limits-match-requests"
STACK_FILES = sorted(p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))
CORPUS = Path(__file__).parent / "corpus"
CORPUS_EXPECTED: dict[str, dict[str, list[str]]] = (
    yaml.safe_load((CORPUS / "expected.yaml").read_text()) if (CORPUS / "expected.yaml").exists() else {}
)


def policy_config(stack: str) -> dict[str, Any]:
    return dict(json.loads((PACK_DIR / "config" / f"{stack}.json").read_text()))


def gpu_container(name: str = "trainer", **changes: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": 1}},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    container.update(changes)
    return container


def pod_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "priorityClassName": "training-critical",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"ml-platform.io/gpu": "a100-80gb"},
        "containers": [gpu_container()],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}],
    }
    spec.update(changes)
    return spec


def pod(name: str = "train", **spec_changes: Any) -> dict[str, Any]:
    """Pod inputs as the Pulumi Kubernetes SDK registers them (apiVersion/kind included)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "research"},
        "spec": pod_spec(**spec_changes),
    }


def pod_without_shm() -> dict[str, Any]:
    return pod(containers=[gpu_container(volumeMounts=[])], volumes=[])


def pytorchjob(worker_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "llm-finetune", "namespace": "research"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": pod_spec()}},
                "Worker": {"replicas": 3, "restartPolicy": "OnFailure", "template": {"spec": worker_spec}},
            }
        },
    }


def messages(violations: list[Violation]) -> str:
    return "\n".join(f"[{v.enforcement}] {v.policy} {v.urn}: {v.message}" for v in violations)


# ---------------------------------------------------------------- the pack as the CLI loads it


def test_importing_pack_starts_nothing() -> None:
    result = subprocess.run(
        # The repository root on the path, as __main__.py puts it there (the shared `vocabulary` package).
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, '..'); import pack; assert len(pack.build_policies()) == 12",
        ],
        cwd=PACK_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", "importing pack.py must not start the analyzer server (it prints its port)"


def test_the_cli_entry_point_serves_every_policy_over_grpc() -> None:
    """`python -u -m pulumi.policy <engine> .` in the pack directory, as the CLI's analyzer plugin runs it."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the policy pack did not print its port within 60 s"
        port = process.stdout.readline().strip()
        assert port.isdigit(), (
            f"expected a port, got {port!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "ml-platform"
            assert info.supportsConfig
            levels = {p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel) for p in info.policies}
            assert levels[SHM] == "MANDATORY" and levels[LIMITS] == "MANDATORY"
            assert levels["gpu-node-targeting"] == "ADVISORY"
            assert len(levels) == 12
            response = stub.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=POD,
                    name="train",
                    urn="urn:pulumi:t::p::x::train",
                    properties=encode_properties(pod_without_shm()),
                ),
                timeout=30,
            )
            assert [d.policyName for d in response.diagnostics] == [SHM]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_policy_metadata_and_config_schema() -> None:
    session = AnalyzerSession()
    policies = {p.name: p for p in session.info.policies}
    stack_policies = {n for n, p in policies.items() if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK}
    assert stack_policies == {"team-namespace-gpu-quota"}
    assert all(p.remediation_steps for p in policies.values())
    # The engine fills in schema defaults.
    assert session.config["gpu-shm-size-limit"].properties == {"shmMinSize": "8Gi"}
    assert session.config["no-time-slicing-in-production"].properties == {"environment": "dev"}
    assert session.config[SHM].enforcement_level == "mandatory"


def test_invalid_policy_config_is_refused_as_the_engine_would() -> None:
    with pytest.raises(PolicyConfigError, match="environment"):
        AnalyzerSession({"no-time-slicing-in-production": {"environment": "qa"}})
    with pytest.raises(PolicyConfigError, match="not a valid enforcement level"):
        AnalyzerSession({SHM: "warn"})
    with pytest.raises(PolicyConfigError, match="shmMinSize"):
        AnalyzerSession({"gpu-shm-size-limit": {"shmMinSize": "8GB"}})


# ---------------------------------------------------------------- what the engine hands a policy


def test_the_harness_hands_policies_what_the_engine_does() -> None:
    """Read-only proxies (not dict/list) and float numbers: the rules must not rely on either."""
    seen: dict[str, Any] = {}

    def spy(args: ResourceValidationArgs, report_violation: Any) -> None:
        del report_violation
        container = args.props["spec"]["containers"][0]
        seen["props"], seen["containers"] = args.props, args.props["spec"]["containers"]
        seen["limit"] = container["resources"]["limits"]["nvidia.com/gpu"]
        seen["secret"] = args.props["metadata"]["annotations"]["token"]

    policy = ResourceValidationPolicy("spy", "records what it sees", validate=spy)
    servicer = _PolicyAnalyzerServicer("spy", "0.0.1", [policy], EnforcementLevel.ADVISORY)
    props = pod()
    props["metadata"]["annotations"] = {"token": {rpc._special_sig_key: rpc._special_secret_sig, "value": "s3cr3t"}}
    servicer.Analyze(analyzer_pb2.AnalyzeRequest(type=POD, name="train", properties=encode_properties(props)), None)
    assert not isinstance(seen["props"], dict) and not isinstance(seen["containers"], list)
    assert type(seen["limit"]) is float and seen["limit"] == 1.0
    assert seen["secret"] == "s3cr3t"
    assert decode_properties(encode_properties({"a": 8, "b": [{"c": 2}], "__internal": 1})) == {
        "a": 8.0,
        "b": [{"c": 2.0}],
    }


# ---------------------------------------------------------------- resource policies


def test_gpu_pod_without_shm_is_a_mandatory_violation() -> None:
    violations = analyze([(POD, "train", pod_without_shm())], None)
    shm = of_policy(violations, SHM)
    assert len(shm) == 1, messages(violations)
    assert shm[0].enforcement == "mandatory"
    assert shm[0].urn.endswith(f"::{POD}::train")
    assert 'Pod/research/train: container "trainer" in spec requests GPUs but does not mount anything at /dev/shm' in (
        shm[0].message
    )
    assert "remediation: add to the pod spec `volumes: [{name: dshm" in shm[0].message
    assert mandatory(violations) == shm, messages(violations)


@pytest.mark.parametrize(("stack", "level"), [("dev", "advisory"), ("prod", "mandatory")])
def test_stack_policy_config_sets_the_level(stack: str, level: str) -> None:
    violations = analyze([(POD, "train", pod_without_shm())], policy_config(stack))
    assert [v.enforcement for v in of_policy(violations, SHM)] == [level], messages(violations)


def test_a_disabled_policy_does_not_run() -> None:
    violations = analyze([(POD, "train", pod_without_shm())], {SHM: {"enforcementLevel": "disabled"}})
    assert of_policy(violations, SHM) == []


def test_a_clean_gpu_pod_passes_every_policy_even_in_prod() -> None:
    violations = analyze([(POD, "train", pod())], policy_config("prod"))
    assert violations == [], messages(violations)


def test_pytorchjob_names_the_bad_worker_site() -> None:
    bad_worker = pod_spec(containers=[gpu_container(volumeMounts=[])], volumes=[])
    job = pytorchjob(bad_worker)
    violations = analyze([(PYTORCHJOB, "llm-finetune", job)], None)
    shm = of_policy(violations, SHM)
    assert len(shm) == 1, messages(violations)
    assert "PyTorchJob/research/llm-finetune: " in shm[0].message
    assert 'container "trainer" in spec.pytorchReplicaSpecs.Worker.template.spec' in shm[0].message
    assert "Master" not in shm[0].message


def test_integer_limit_equals_string_request_through_the_wire() -> None:
    """limits `nvidia.com/gpu: 1` arrives as 1.0, requests "1" as a string: equal quantities."""
    violations = analyze([(POD, "train", pod())], None)
    assert of_policy(violations, LIMITS) == [], messages(violations)


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        (
            {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": 2}},
            "requests nvidia.com/gpu: 1 but limits it to 2",
        ),
        ({"requests": {"nvidia.com/mig-1g.10gb": 1}}, "requests nvidia.com/mig-1g.10gb: 1"),
    ],
)
def test_limit_mismatch_is_mandatory(resources: dict[str, Any], problem: str) -> None:
    violations = analyze([(POD, "train", pod(containers=[gpu_container(resources=resources)]))], None)
    limits = of_policy(violations, LIMITS)
    assert len(limits) == 1 and limits[0].enforcement == "mandatory", messages(violations)
    assert problem in limits[0].message


@pytest.mark.parametrize(("version", "fails"), [("^1.0", True), ("latest", True), ("", True), ("1.14.1", False)])
def test_helm_chart_pinned(version: str, fails: bool) -> None:
    release = {"chart": "nvidia/gpu-operator", "version": version, "values": {"driver": {"enabled": True}}}
    violations = of_policy(analyze([(HELM_RELEASE, "gpu-operator", release)], None), "helm-chart-pinned")
    assert bool(violations) is fails
    if fails:
        assert violations[0].enforcement == "advisory"
        assert (
            f"{HELM_RELEASE} gpu-operator: chart nvidia/gpu-operator has version {version!r}" in violations[0].message
        )


def test_policy_properties_reach_the_rules() -> None:
    small = pod(volumes=[{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}])
    assert of_policy(analyze([(POD, "train", small)], None), "gpu-shm-size-limit") == []
    violations = analyze([(POD, "train", small)], {"gpu-shm-size-limit": {"shmMinSize": "32Gi"}})
    assert [v.message.splitlines()[1] for v in of_policy(violations, "gpu-shm-size-limit")] == [
        'Pod/research/train: /dev/shm of container "trainer" in spec sizeLimit 16Gi is below 32Gi'
    ]

    node_pool = {
        "nodeConfig": {
            "guestAccelerators": [
                {"type": "nvidia-l4", "count": 1, "gpuSharingConfig": {"gpuSharingStrategy": "TIME_SHARING"}}
            ],
            "labels": {"ml-platform.io/workload": "training"},
        }
    }
    resource = ("gcp:container/nodePool:NodePool", "l4-shared", node_pool)
    assert of_policy(analyze([resource], policy_config("dev")), "no-time-slicing-in-production") == []
    prod = of_policy(analyze([resource], policy_config("prod")), "no-time-slicing-in-production")
    assert [v.enforcement for v in prod] == ["mandatory"]


def test_infra_rules_on_float_numbers() -> None:
    template = {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}}
    violations = of_policy(
        analyze([("aws:ec2/launchTemplate:LaunchTemplate", "gpu", template)], None), "eks-imdsv2-hop-limit"
    )
    assert len(violations) == 1 and "httpPutResponseHopLimit is 2:" in violations[0].message
    node_class = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "gpu"},
        "spec": {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
    }
    assert analyze([("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "gpu", node_class)], None) == []


WORKLOADS: list[tuple[str, dict[str, Any], str]] = [
    (
        DEPLOYMENT,
        {"metadata": {"name": "serve"}, "spec": {"template": {"spec": pod_spec(volumes=[])}}},
        "spec.template.spec",
    ),
    (
        "kubernetes:batch/v1:CronJob",
        {
            "metadata": {"name": "nightly"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(volumes=[])}}}},
        },
        "spec.jobTemplate.spec.template.spec",
    ),
    (
        "kubernetes:jobset.x-k8s.io/v1alpha2:JobSet",
        {
            "metadata": {"name": "js"},
            "spec": {
                "replicatedJobs": [{"name": "w", "template": {"spec": {"template": {"spec": pod_spec(volumes=[])}}}}]
            },
        },
        "spec.replicatedJobs[0].template.spec.template.spec",
    ),
    (
        "kubernetes:ray.io/v1:RayCluster",
        {
            "metadata": {"name": "ray"},
            "spec": {
                "headGroupSpec": {"template": {"spec": pod_spec()}},
                "workerGroupSpecs": [{"groupName": "gpu", "template": {"spec": pod_spec(volumes=[])}}],
            },
        },
        "spec.workerGroupSpecs[0].template.spec",
    ),
    (
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        {
            "metadata": {"name": "llm"},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "huggingface"},
                        "resources": {"limits": {"nvidia.com/gpu": 1}},
                    }
                }
            },
        },
        "spec.predictor",
    ),
]


@pytest.mark.parametrize(("resource_type", "props", "site"), WORKLOADS, ids=[w[0].split(":")[-1] for w in WORKLOADS])
def test_workload_kinds_through_the_analyzer(resource_type: str, props: dict[str, Any], site: str) -> None:
    violations = analyze([(resource_type, "w", props)], None)
    shm = of_policy(violations, SHM)
    assert len(shm) == 1 and f" in {site} requests GPUs" in shm[0].message, messages(violations)
    # ... and the remediation fixes every one of them.
    fixed = remediate(resource_type, "w", props, {SHM: "remediate"})
    assert fixed is not None
    assert of_policy(analyze([(resource_type, "w", fixed)], None), SHM) == []


# ---------------------------------------------------------------- the stack policy


def namespace(name: str, team: str | None) -> tuple[str, str, dict[str, Any]]:
    labels = {"ml-platform.io/team": team} if team else {}
    return (
        "kubernetes:core/v1:Namespace",
        name,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
    )


def quota(namespace_name: str, hard: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    props = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpu", "namespace": namespace_name},
        "spec": {"hard": hard},
    }
    return ("kubernetes:core/v1:ResourceQuota", f"{namespace_name}-gpu", props)


def test_team_namespace_gpu_quota_through_analyze_stack() -> None:
    resources = [
        namespace("team-a", "a"),
        namespace("team-b", "b"),
        namespace("ml-platform-system", None),
        quota("team-a", {"requests.nvidia.com/gpu": 8, "limits.nvidia.com/gpu": 8}),
        quota("team-b", {"requests.cpu": "64"}),
    ]
    violations = of_policy(analyze(resources, None), "team-namespace-gpu-quota")
    assert len(violations) == 1, messages(violations)
    assert violations[0].urn.endswith("kubernetes:core/v1:Namespace::team-b")
    assert "team namespace team-b has no ResourceQuota limiting GPUs" in violations[0].message
    assert violations[0].enforcement == "advisory"
    prod = of_policy(analyze(resources, policy_config("prod")), "team-namespace-gpu-quota")
    assert [v.enforcement for v in prod] == ["mandatory"]


def test_stack_policy_is_skipped_when_disabled() -> None:
    resources = [namespace("team-b", "b")]
    assert analyze(resources, {"team-namespace-gpu-quota": "disabled"}) == []


# ---------------------------------------------------------------- remediation


def test_remediation_adds_the_volume_and_the_mount() -> None:
    fixed = remediate(POD, "train", pod_without_shm(), {SHM: "remediate"})
    assert fixed is not None
    assert fixed["spec"]["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    assert fixed["spec"]["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    # Everything else is unchanged (numbers come back as the wire's floats).
    assert fixed["spec"]["containers"][0]["resources"] == {
        "requests": {"nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": 1.0},
    }
    # The remediated inputs pass the mandatory rule, even at prod's levels.
    assert mandatory(analyze([(POD, "train", fixed)], policy_config("prod"))) == []


def test_remediation_runs_only_at_level_remediate() -> None:
    assert remediate(POD, "train", pod_without_shm(), None) is None
    assert remediate(POD, "train", pod_without_shm(), policy_config("prod")) is None
    # analyze() remediates first, as the engine does: nothing left to report.
    assert of_policy(analyze([(POD, "train", pod_without_shm())], {SHM: "remediate"}), SHM) == []


def test_remediation_of_a_pytorchjob_fixes_only_the_worker() -> None:
    bad_worker = pod_spec(containers=[gpu_container(volumeMounts=[])], volumes=[])
    job = pytorchjob(bad_worker)
    fixed = remediate(PYTORCHJOB, "llm-finetune", job, {SHM: "remediate"})
    assert fixed is not None
    replicas = fixed["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["template"]["spec"] == json.loads(json.dumps(pod_spec()))
    assert replicas["Worker"]["template"]["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"}
    ]
    assert of_policy(analyze([(PYTORCHJOB, "llm-finetune", fixed)], None), SHM) == []


def test_remediation_converts_a_disk_volume_only_its_gpu_container_uses() -> None:
    disk = pod(volumes=[{"name": "dshm", "emptyDir": {}}])
    fixed = remediate(POD, "train", disk, {SHM: "remediate"})
    assert fixed is not None
    assert fixed["spec"]["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    assert fixed["spec"]["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]


def test_remediation_leaves_a_shared_disk_volume_and_validation_fails() -> None:
    sidecar = {"name": "uploader", "image": "busybox", "volumeMounts": [{"name": "dshm", "mountPath": "/data"}]}
    shared = pod(
        containers=[gpu_container(), sidecar],
        volumes=[{"name": "dshm", "hostPath": {"path": "/mnt/scratch"}}],
    )
    assert remediate(POD, "train", shared, {SHM: "remediate"}) is None
    violations = of_policy(analyze([(POD, "train", shared)], {SHM: "remediate"}), SHM)
    # A remediate-level policy whose check still fails reports mandatory.
    assert [v.enforcement for v in violations] == ["mandatory"]
    assert 'mounts "dshm" at /dev/shm, a hostPath volume that is not memory-backed' in violations[0].message


def test_remediation_picks_a_free_volume_name_and_shares_it() -> None:
    scratch_user = {"name": "uploader", "image": "busybox", "volumeMounts": [{"name": "dshm", "mountPath": "/data"}]}
    props = pod(
        containers=[gpu_container("a", volumeMounts=[]), gpu_container("b", volumeMounts=[]), scratch_user],
        volumes=[{"name": "dshm", "hostPath": {"path": "/mnt/scratch"}}],
    )
    fixed = remediate(POD, "train", props, {SHM: "remediate"})
    assert fixed is not None
    assert [v["name"] for v in fixed["spec"]["volumes"]] == ["dshm", "dshm-1"]
    assert fixed["spec"]["volumes"][0] == {"name": "dshm", "hostPath": {"path": "/mnt/scratch"}}
    mounts = [c.get("volumeMounts") for c in fixed["spec"]["containers"]]
    assert mounts == [
        [{"name": "dshm-1", "mountPath": "/dev/shm"}],
        [{"name": "dshm-1", "mountPath": "/dev/shm"}],
        [{"name": "dshm", "mountPath": "/data"}],
    ]
    assert of_policy(analyze([(POD, "train", fixed)], None), SHM) == []


def test_remediation_keeps_secrets_secret() -> None:
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "hf_token_value"}
    props = pod_without_shm()
    props["spec"]["containers"][0]["env"] = [{"name": "HF_TOKEN", "value": secret}]
    fixed = remediate(POD, "train", props, {SHM: "remediate"})
    assert fixed is not None
    assert fixed["spec"]["containers"][0]["env"] == [{"name": "HF_TOKEN", "value": secret}]
    assert fixed["spec"]["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (POD, pod()),  # nothing to fix
        (POD, pod(containers=[{"name": "cpu", "image": "busybox"}], volumes=[])),  # no GPU
        (HELM_RELEASE, {"chart": "x", "version": "1.0.0"}),
        ("kubernetes:core/v1:ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "b"}}),
    ],
)
def test_remediation_changes_nothing_else(resource_type: str, props: dict[str, Any]) -> None:
    assert remediate(resource_type, "x", copy.deepcopy(props), {SHM: "remediate"}) is None


@pytest.mark.parametrize("shared", [False, True])
def test_remediation_of_many_mounts_is_linear(shared: bool) -> None:
    """10,000 /dev/shm mounts on disk volumes took 30 s (each mount's volume found by scanning every volume), and 129 s
    when a sidecar also mounts the volume (each mount scanned every mount of the pod to see who uses it)."""
    n = 10_000
    if shared:
        mounts = [{"name": "scratch", "mountPath": "/dev/shm"} for _ in range(n)]
        volumes = [{"name": "scratch", "emptyDir": {}}]
        sidecar = [
            {"name": "uploader", "image": "busybox", "volumeMounts": [{"name": "scratch", "mountPath": "/data"}]}
        ]
    else:
        mounts = [{"name": f"v{i}", "mountPath": "/dev/shm"} for i in range(n)]
        volumes = [{"name": f"v{i}", "emptyDir": {}} for i in range(n)]
        sidecar = []
    props = pod(containers=[gpu_container(volumeMounts=mounts), *sidecar], volumes=volumes)
    started = time.monotonic()
    fixed = remediate_shm_volume(POD, props)
    assert time.monotonic() - started < 5
    if shared:
        assert fixed is None  # the sidecar's volume is left alone: validation reports it
    else:
        assert fixed is not None and all(v["emptyDir"]["medium"] == "Memory" for v in fixed["spec"]["volumes"])
        assert check_object(kubernetes_object(POD, fixed) or {}) == []


# ---------------------------------------------------------------- the shared corpus (tests/policies/corpus)


def as_resource(obj: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A manifest as the Pulumi Kubernetes resource that would create it (`kubernetes:<group>/<version>:<Kind>`)."""
    api_version = str(obj["apiVersion"])
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return (f"kubernetes:{group_version}:{obj['kind']}", str(obj["metadata"]["name"]), obj)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_corpus_case_through_the_analyzer(name: str) -> None:
    """The pack gives the corpus verdict, with the same findings as the rules on plain dicts (5(a) of issue 4)."""
    obj = yaml.safe_load((CORPUS / "cases" / name).read_text())
    violations = analyze([as_resource(obj)], None)
    verdict = {
        level: sorted({v.policy for v in violations if v.enforcement == level}) for level in ("mandatory", "advisory")
    }
    assert verdict == CORPUS_EXPECTED[name], messages(violations)
    on_dicts = sorted(f"{f.object}: {f.message}" for f in check_object(obj))
    # The same findings, word for word, although every number crossed the wire as a float.
    through_engine = sorted(v.message.splitlines()[1] for v in violations)
    assert through_engine == on_dicts


def test_limit_messages_quote_quantities_as_declared() -> None:
    props = pod(containers=[gpu_container(resources={"requests": {"nvidia.com/gpu": 8}})])
    (violation,) = of_policy(analyze([(POD, "train", props)], None), LIMITS)
    assert "requests nvidia.com/gpu: 8 without a limit" in violation.message


def test_corpus_stack_through_analyze_stack() -> None:
    path = CORPUS / "stack" / "team-namespaces.yaml"
    if not path.exists():
        pytest.skip("no corpus stack")
    expected = yaml.safe_load((CORPUS / "stack-expected.yaml").read_text())["findings"]
    resources = [as_resource(obj) for obj in yaml.safe_load_all(path.read_text()) if obj]
    violations = [v for v in analyze(resources, None) if v.policy == "team-namespace-gpu-quota"]
    assert [v.message.splitlines()[1].split(":")[0] for v in violations] == [f["object"] for f in expected]


# ---------------------------------------------------------------- the platform's own stacks


def test_every_stack_has_a_policy_config() -> None:
    assert STACK_FILES
    missing = [s for s in STACK_FILES if not (PACK_DIR / "config" / f"{s}.json").exists()]
    assert missing == [], f"policies/config/<stack>.json missing for {missing}"


@pytest.mark.parametrize("stack", STACK_FILES)
def test_platform_stack_has_no_mandatory_violation(stack: str) -> None:
    plan = run_stack(read_stack_file(stack))
    assert plan.error is None, plan.error
    resources = [(r.type, r.name, unwrap(r.inputs)) for r in plan.registrations]
    assert any(t.startswith("kubernetes:") for t, _, _ in resources)
    violations = analyze(resources, policy_config(stack), urns=[r.urn for r in plan.registrations])
    advisory = [v for v in violations if v.enforcement != "mandatory"]
    assert mandatory(violations) == [], (
        f"mandatory:\n{messages(mandatory(violations))}\nadvisory (for context):\n{messages(advisory)}"
    )


def test_time_slicing_on_an_inference_node_group_is_reported_by_the_pack() -> None:
    labels = {"ml-platform.io/sharing": "time-slicing", "ml-platform.io/workload": "inference"}
    violations = analyze([("aws:eks/nodeGroup:NodeGroup", "serve", {"labels": labels})], None)
    assert [v.policy for v in violations] == ["no-time-slicing-in-production"]
    labels["ml-platform.io/workload"] = "dev"
    assert analyze([("aws:eks/nodeGroup:NodeGroup", "notebooks", {"labels": labels})], None) == []


def test_secrets_encryption_on_gke_and_eks() -> None:
    gke = "gcp:container/cluster:Cluster"
    assert [v.policy for v in analyze([(gke, "ml", {"name": "ml"})], None)] == ["cluster-secrets-encryption"]
    encrypted = {"name": "ml", "databaseEncryption": {"state": "ENCRYPTED", "keyName": "projects/p/.../secrets"}}
    assert analyze([(gke, "ml", encrypted)], None) == []
    eks = "aws:eks/cluster:Cluster"
    assert [v.policy for v in analyze([(eks, "ml", {"name": "ml"})], None)] == ["cluster-secrets-encryption"]
