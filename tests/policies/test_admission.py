"""In-cluster admission: the ValidatingAdmissionPolicies per workload kind, their bindings, and the opt-in
default /dev/shm mutation. The CEL itself is checked against the corpus in test_policy_corpus.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.admission import DEFAULT_SHM_POLICY, default_shm_match_condition, validation_expression
from conftest import plan_of, plan_variant
from schemas import crd_schema_dir, evaluate_cel, validate_builtin
from tools.offline import PlanResult, redact
from validation.crd import _load_crds, _mentions
from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.workloads import WORKLOAD_KINDS

VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
VAPB = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
MAP = "kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicy"
CORPUS = Path(__file__).parent / "corpus" / "cases"
# Kubernetes' own namespaces and the platform's: never checked (its controllers and device plugins run there).
PLATFORM_NAMESPACES = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "ml-platform-system",
    "gpu-operator",
    "monitoring",
    "kueue-system",
    "kuberay-system",
    "kubeflow-system",
    "kubeflow",
    "cert-manager",
    "kserve",
]


def by_name(plan: PlanResult, typ: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: redact(r.inputs) for r in plan.of_type(typ)}


# What the API server calls the built-in kinds (group, served version, plural), as in the Kubernetes API reference.
BUILT_IN = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}


def served_by_a_pinned_crd(group: str, version: str, plural: str) -> bool:
    crds = crd_schema_dir()
    assert crds is not None, "set CRD_SCHEMA_DIR=../shared/reference/crds"
    for path in sorted(crds.rglob("*.yaml")):
        text = path.read_text()
        if not (_mentions(text, "group", group) and _mentions(text, "plural", plural)):
            continue  # parse only candidate files: the pinned CRDs are ~10 MB of YAML
        for crd in _load_crds(path):
            spec = crd["spec"]
            if spec["group"] == group and spec["names"]["plural"] == plural:
                return any(v["name"] == version and v.get("served") for v in spec["versions"])
    return False


def test_a_policy_and_binding_per_workload_kind_matching_what_the_api_server_serves() -> None:
    plan = plan_of("dev")
    policies, bindings = by_name(plan, VAP), by_name(plan, VAPB)
    assert len(policies) == len(bindings) == 16
    for policy in policies.values():
        [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
        [group], [version], [plural] = rule["apiGroups"], rule["apiVersions"], rule["resources"]
        if group in ("", "apps", "batch"):
            assert (group, version, plural) in BUILT_IN.values(), policy["metadata"]["name"]
        elif crd_schema_dir() is not None:
            # Custom kinds: a pinned upstream CRD serves exactly this group, version and plural.
            assert served_by_a_pinned_crd(group, version, plural), policy["metadata"]["name"]
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}
        assert [v["message"].split(":")[0] for v in policy["spec"]["validations"]] == [SHM_RULE, LIMITS_RULE]
        assert policy["spec"]["failurePolicy"] == "Fail"
    assert {f"ml-platform-gpu-{kind.lower()}" for kind in BUILT_IN} <= set(policies)


def test_the_deployed_expressions_give_the_corpus_verdicts() -> None:
    """The CEL in the plan itself (not a fresh build of it), on every corpus case of the policy's kind."""
    expected = yaml.safe_load((CORPUS.parent / "expected.yaml").read_text())
    policies = by_name(plan_of("prod"), VAP)
    checked = 0
    for name, verdict in expected.items():
        obj = yaml.safe_load((CORPUS / name).read_text())
        policy = policies.get(f"ml-platform-gpu-{obj['kind'].lower()}")
        if policy is None:
            continue
        request = {"object": obj, "request": {"operation": "CREATE"}, "oldObject": None}
        failed = [
            v["message"].split(":")[0]
            for v in policy["spec"]["validations"]
            if evaluate_cel(v["expression"], request) is not True
        ]
        assert sorted(failed) == verdict["mandatory"], name
        checked += 1
    assert checked >= 60


def test_deny_in_prod_warn_and_audit_in_dev_platform_namespaces_exempt() -> None:
    for stack, actions in (("prod", ["Deny"]), ("dev", ["Warn", "Audit"]), ("gke", ["Warn", "Audit"])):
        for binding in by_name(plan_of(stack), VAPB).values():
            assert binding["spec"]["validationActions"] == actions, stack
            [expression] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
            assert expression["operator"] == "NotIn" and expression["values"] == PLATFORM_NAMESPACES


def test_bindings_wait_for_their_policy() -> None:
    plan = plan_of("prod")
    policies = {r.inputs["metadata"]["name"]: r.urn for r in plan.of_type(VAP)}
    for binding in plan.of_type(VAPB):
        assert policies[binding.inputs["spec"]["policyName"]] in binding.dependencies


@pytest.mark.parametrize("target", WORKLOAD_KINDS, ids=lambda t: t.kind)
def test_expressions_accept_objects_without_pod_specs(target: Any) -> None:
    # A kind whose optional parts are all absent has nothing to check: every has() guard must hold.
    obj = {"apiVersion": "v1", "kind": target.kind, "metadata": {"name": "x"}, "spec": {}}
    for rule in (SHM_RULE, LIMITS_RULE):
        assert (
            evaluate_cel(
                validation_expression(target.kind, rule),
                {"object": obj, "request": {"operation": "CREATE"}, "oldObject": None},
            )
            is True
        )


def test_no_default_shm_mutation_unless_asked() -> None:
    assert all(not plan_of(s).of_type(MAP) for s in ("dev", "prod", "gke", "local"))


@pytest.fixture(scope="module")
def shm_plan(tmp_path_factory: pytest.TempPathFactory) -> PlanResult:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:cluster"]["kubernetesVersion"] = "1.36"
        c["ml-platform:policies"] = {"defaultShm": True}

    return plan_variant(tmp_path_factory.mktemp("shm"), "local", change)


def test_default_shm_mutation_is_a_valid_v1_policy_on_1_36(shm_plan: PlanResult) -> None:
    assert shm_plan.error is None, shm_plan.error
    # (1.36 also brings the Teams layer's default-priority policy)
    [policy] = [r for r in shm_plan.of_type(MAP) if r.inputs["metadata"]["name"] == DEFAULT_SHM_POLICY]
    [binding] = [
        r
        for r in shm_plan.of_type("kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicyBinding")
        if r.inputs["metadata"]["name"] == DEFAULT_SHM_POLICY
    ]
    for reg, kind in ((policy, "MutatingAdmissionPolicy"), (binding, "MutatingAdmissionPolicyBinding")):
        obj = {**redact(reg.inputs), "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind}
        assert validate_builtin(obj, "1.36") == [], kind
    assert policy.urn in binding.dependencies
    spec = redact(policy.inputs)["spec"]
    [mutation] = spec["mutations"]
    assert mutation["patchType"] == "ApplyConfiguration"
    assert 'mountPath: "/dev/shm"' in mutation["applyConfiguration"]["expression"]
    assert 'medium: "Memory"' in mutation["applyConfiguration"]["expression"]


@pytest.mark.parametrize(
    ("case", "mutated"),
    [
        ("pod-no-shm.yaml", True),
        ("pod-mig-no-shm.yaml", True),
        ("pod-good.yaml", False),  # already has a memory /dev/shm
        ("pod-shm-disk-backed.yaml", False),  # something is mounted there: leave it to validation
        ("pod-cpu-only-no-shm.yaml", False),
        ("pod-gpu-zero.yaml", False),
    ],
)
def test_default_shm_applies_only_to_gpu_pods_with_nothing_at_dev_shm(case: str, mutated: bool) -> None:
    pod = yaml.safe_load((CORPUS / case).read_text())
    assert (
        evaluate_cel(
            default_shm_match_condition(), {"object": pod, "request": {"operation": "CREATE"}, "oldObject": None}
        )
        is mutated
    )


def test_the_pack_config_and_the_admission_enforcement_agree() -> None:
    """Two places carry enforcement: the stack (admission bindings) and policies/config/<stack>.json (the pack)."""
    import json as json_module

    from conftest import STACKS
    from tools.offline import PROJECT_DIR

    for stack in STACKS:
        pack = json_module.loads((PROJECT_DIR / "policies" / "config" / f"{stack}.json").read_text())
        actions = {tuple(b["spec"]["validationActions"]) for b in by_name(plan_of(stack), VAPB).values()}
        assert actions == ({("Deny",)} if pack["all"] == "mandatory" else {("Warn", "Audit")}), stack


def test_more_namespaces_can_be_exempted(tmp_path: Path) -> None:
    plan = plan_variant(
        tmp_path, "dev", lambda c: c.update({"ml-platform:policies": {"exemptNamespaces": ["ray-system"]}})
    )
    for binding in by_name(plan, VAPB).values():
        [expression] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert expression["values"] == [*PLATFORM_NAMESPACES, "ray-system"]
