"""In-cluster admission: the ValidatingAdmissionPolicies per workload kind, their bindings, and the opt-in
default /dev/shm mutation. The CEL itself is checked against the corpus in test_policy_corpus.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.admission import EXEMPT_NAMESPACES, default_shm_match_condition, validation_expression
from conftest import plan_of, plan_variant
from schemas import evaluate_cel, validate_builtin
from tools.offline import PlanResult, redact
from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.workloads import WORKLOAD_KINDS

VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
VAPB = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
MAP = "kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicy"
CORPUS = Path(__file__).parent / "corpus" / "cases"


def by_name(plan: PlanResult, typ: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: redact(r.inputs) for r in plan.of_type(typ)}


def test_a_policy_and_binding_per_workload_kind_with_both_mandatory_rules() -> None:
    plan = plan_of("dev")
    policies, bindings = by_name(plan, VAP), by_name(plan, VAPB)
    assert len(policies) == len(bindings) == len(WORKLOAD_KINDS) == 16
    for target in WORKLOAD_KINDS:
        policy = policies[f"ml-platform-gpu-{target.kind.lower()}"]
        [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
        assert rule["apiGroups"] == [target.group] and rule["resources"] == [target.resource]
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}
        expressions = [v["expression"] for v in policy["spec"]["validations"]]
        assert expressions == [
            validation_expression(target.kind, SHM_RULE),
            validation_expression(target.kind, LIMITS_RULE),
        ]
        assert policy["spec"]["failurePolicy"] == "Fail"


def test_deny_in_prod_warn_and_audit_in_dev_platform_namespaces_exempt() -> None:
    for stack, actions in (("prod", ["Deny"]), ("dev", ["Warn", "Audit"]), ("gke", ["Warn", "Audit"])):
        for binding in by_name(plan_of(stack), VAPB).values():
            assert binding["spec"]["validationActions"] == actions, stack
            [expression] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
            assert expression["operator"] == "NotIn" and set(expression["values"]) == set(EXEMPT_NAMESPACES)


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
    [policy] = shm_plan.of_type(MAP)
    [binding] = shm_plan.of_type("kubernetes:admissionregistration.k8s.io/v1:MutatingAdmissionPolicyBinding")
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
        tmp_path, "dev", lambda c: c.update({"ml-platform:policies": {"exemptNamespaces": ["gpu-operator"]}})
    )
    for binding in by_name(plan, VAPB).values():
        [expression] = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert expression["values"] == [*EXEMPT_NAMESPACES, "gpu-operator"]
