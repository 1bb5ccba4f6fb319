"""Teams: PriorityClasses, and per team a namespace, quotas per GPU resource, defaults, access and isolation."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.platform import PlatformConfig
from components.gpu_pools import resolve_gpu_pools
from components.team_quotas import gpu_borrowing, gpu_quota, gpu_requests
from components.teams import allowed_priorities, team_objects
from conftest import H100_MIG, plan_of, plan_variant, platform_config
from tools.offline import PlanResult

AWS = {"cloud": "aws", "name": "ml", "region": "us-east-1"}
H100 = {"name": "train", "gpu": "h100-80gb", "gpusPerNode": 8, "maxNodes": 2}
MIG = H100_MIG
A10G = {
    "name": "nb",
    "gpu": "a10g",
    "gpusPerNode": 1,
    "maxNodes": 4,
    "sharing": {"mode": "time-slicing", "replicas": 4},
}


def objects(plan: PlanResult, kind: str, namespace: str | None = None) -> dict[str, dict[str, Any]]:
    found = {}
    for r in plan.registrations:
        inputs = r.inputs
        if isinstance(inputs, dict) and inputs.get("kind") == kind:
            meta = inputs["metadata"]
            if namespace is None or meta.get("namespace") == namespace:
                found[meta["name"]] = inputs
    return found


def config(teams: list[dict[str, Any]], *pools: dict[str, Any]) -> PlatformConfig:
    return platform_config(AWS, pools, teams=teams)


def test_three_priority_classes_none_global_development_never_preempts() -> None:
    classes = objects(plan_of("prod"), "PriorityClass")
    assert {n: (c["value"], c["preemptionPolicy"], c["globalDefault"]) for n, c in classes.items()} == {
        "production-serving": (1000, "PreemptLowerPriority", False),
        "training-critical": (500, "PreemptLowerPriority", False),
        "development": (100, "Never", False),
    }


def test_a_namespace_per_team_with_pod_security_and_the_team_label() -> None:
    ns = objects(plan_of("prod"), "Namespace")
    for team in ("research", "serving"):
        labels = ns[team]["metadata"]["labels"]
        assert labels["ml-platform.io/team"] == team
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_quota_per_gpu_resource_name_mig_included() -> None:
    plan = plan_of("prod")
    serving = objects(plan, "ResourceQuota", "serving")["team-quota"]["spec"]["hard"]
    # {nvidia.com/mig-1g.10gb: 56, a100-80gb: 16}: MIG slices and whole A100s, each under its resource name, and
    # as much again borrowable by default (the hard backstop allows what Kueue may admit: quota + borrowing limit)
    assert serving["requests.nvidia.com/mig-1g.10gb"] == "112" and serving["requests.nvidia.com/gpu"] == "32"
    research = objects(plan, "ResourceQuota", "research")["team-quota"]["spec"]["hard"]
    assert research["requests.nvidia.com/gpu"] == "48"  # 32 guaranteed, gpuBorrowingLimit 16
    assert {"requests.cpu", "requests.memory", "requests.storage", "pods"} <= set(research)
    # quota counts extended resources by request only; a limits.* key would be refused by the API server
    assert not [k for k in {**serving, **research} if k.startswith("limits.nvidia.com")]


def test_whole_gpus_of_several_models_add_up_under_one_resource_name() -> None:
    team_config = {"name": "a", "gpuQuota": {"h100-80gb": 8, "a10g": 4}, "gpuBorrowingLimit": {"h100-80gb": 2}}
    cfg = config([team_config], H100, A10G)
    pools = resolve_gpu_pools(cfg)
    [team] = cfg.teams
    assert gpu_quota(team, pools) == {"h100-80gb": 8, "a10g": 4}
    assert gpu_borrowing(team, pools) == {"h100-80gb": 2, "a10g": 0}
    assert gpu_requests(team, pools) == {"nvidia.com/gpu": 14}


def test_a_number_stands_for_the_one_kind_of_gpu_and_every_offered_resource_is_covered() -> None:
    teams = [
        {"name": "a", "gpuQuota": 14, "gpuBorrowingLimit": 0, "pools": ["mig"]},
        {"name": "b", "pools": ["train", "mig"]},
    ]
    cfg = config(teams, H100, MIG)
    pools = resolve_gpu_pools(cfg)
    a, b = cfg.teams
    # and 0 whole GPUs: the train pool is not a's, and a bare pod must not take them
    assert gpu_requests(a, pools) == {"nvidia.com/mig-1g.10gb": 14, "nvidia.com/gpu": 0}
    # no quota: 0 of everything its pools offer (not unlimited)
    assert gpu_requests(b, pools) == {"nvidia.com/gpu": 0, "nvidia.com/mig-1g.10gb": 0}


@pytest.mark.parametrize(
    ("team", "allowed"),
    [
        ({"priority": "development"}, ["development"]),
        ({"priority": "training-critical"}, ["training-critical", "development"]),
        ({"priority": "production-serving"}, ["production-serving", "training-critical", "development"]),
        ({"priority": "development", "priorityClasses": ["development", "production-serving"]}, None),
    ],
)
def test_priority_classes_a_team_may_use(team: dict[str, Any], allowed: list[str] | None) -> None:
    cfg = config([{"name": "a", **team}], H100)
    [t] = cfg.teams
    expected = allowed or team["priorityClasses"]
    assert sorted(allowed_priorities(t)) == sorted(expected)
    scoped = {
        o["metadata"]["name"]: o["spec"]
        for o in team_objects(t, resolve_gpu_pools(cfg))
        if o["kind"] == "ResourceQuota" and "scopeSelector" in o["spec"]
    }
    denied = {"production-serving", "training-critical", "development"} - set(expected)
    assert set(scoped) == {f"no-{name}" for name in denied}
    for name in denied:
        spec = scoped[f"no-{name}"]
        assert spec["hard"] == {"pods": "0"}
        assert spec["scopeSelector"]["matchExpressions"] == [
            {"scopeName": "PriorityClass", "operator": "In", "values": [name]}
        ]


def test_only_the_serving_team_may_use_production_serving_in_prod() -> None:
    plan = plan_of("prod")
    assert "no-production-serving" in objects(plan, "ResourceQuota", "research")
    assert not [n for n in objects(plan, "ResourceQuota", "serving") if n.startswith("no-")]


def test_network_policies_allow_exactly_the_namespace_and_monitoring() -> None:
    policies = objects(plan_of("prod"), "NetworkPolicy", "research")
    # (and the KubeRay operator's, tests/layers/test_kuberay.py)
    assert set(policies) == {
        "default-deny-ingress",
        "allow-same-namespace",
        "allow-monitoring",
        "allow-kuberay-operator",
    }
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # no ingress rule: nothing allowed
    assert policies["allow-same-namespace"]["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert policies["allow-monitoring"]["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}
    ]
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies.values())  # egress stays open


def test_a_team_that_serves_models_admits_traffic_to_its_model_servers_only() -> None:
    serving = objects(plan_of("prod"), "NetworkPolicy", "serving")
    assert set(serving) == {
        "default-deny-ingress",
        "allow-same-namespace",
        "allow-monitoring",
        "allow-serving-ingress",
        "allow-kuberay-operator",
    }
    spec = serving["allow-serving-ingress"]["spec"]
    # KServe's model-server pods (every pod of an InferenceService carries its name), from any namespace
    assert spec["podSelector"] == {
        "matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]
    }
    assert spec["ingress"] == [{"from": [{"namespaceSelector": {}}]}]


def test_groups_edit_their_namespace_and_containers_get_defaults() -> None:
    cfg = config([{"name": "a", "groups": ["ml-research", "oncall"]}], H100)
    [t] = cfg.teams
    objs = {(o["kind"], o["metadata"]["name"]): o for o in team_objects(t, resolve_gpu_pools(cfg))}
    binding = objs[("RoleBinding", "team-edit")]
    assert binding["metadata"]["namespace"] == "a"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    assert [s["name"] for s in binding["subjects"]] == ["ml-research", "oncall"]
    [limits] = objs[("LimitRange", "container-defaults")]["spec"]["limits"]
    assert limits["type"] == "Container" and limits["defaultRequest"] == {"cpu": "250m", "memory": "512Mi"}
    # no default limits: a container requesting more memory than a default limit (and setting none) would be
    # rejected as request > limit; no CPU limit: throttling starves data loaders
    assert "default" not in limits
    view = objs[("RoleBinding", "team-a-view")]
    assert view["metadata"]["namespace"] == "monitoring"  # the shared dashboards and alert rules; view has no Secrets
    assert view["roleRef"]["name"] == "view" and view["subjects"] == binding["subjects"]
    no_groups = config([{"name": "b"}], H100)
    assert not [o for o in team_objects(no_groups.teams[0], resolve_gpu_pools(no_groups)) if o["kind"] == "RoleBinding"]


def test_team_objects_wait_for_their_namespace_and_the_priority_classes() -> None:
    plan = plan_of("prod")
    ns = next(r for r in plan.registrations if r.type == "kubernetes:core/v1:Namespace" and r.name.endswith("research"))
    classes = {r.urn for r in plan.registrations if r.type == "kubernetes:scheduling.k8s.io/v1:PriorityClass"}
    quota = next(
        r
        for r in plan.registrations
        if r.type == "kubernetes:core/v1:ResourceQuota" and r.name.endswith("research/team-quota")
    )
    # the namespace waits for the cluster and the classes; what is inside it waits for the namespace (and so for
    # them: one direct dependency each keeps plans of many teams fast)
    assert classes <= set(ns.dependencies) and quota.dependencies == [ns.urn]
    view = next(r for r in plan.registrations if r.name == "rolebinding-monitoring/team-research-view")
    stack = next(r for r in plan.registrations if r.name == "kube-prometheus-stack")
    assert stack.urn in view.dependencies  # the monitoring namespace exists by then


def test_every_team_object_validates_strictly_even_those_no_stack_plans() -> None:
    """The stacks' teams name no groups, so the plan-wide schema test never sees a RoleBinding: check them here."""
    from schemas import validate_builtin

    cfg = config(
        [{"name": "a", "groups": ["ml-research"], "gpuQuota": {"h100-80gb": 4}, "priorityClasses": ["development"]}],
        H100,
        MIG,
    )
    objs = team_objects(cfg.teams[0], resolve_gpu_pools(cfg))
    assert {o["kind"] for o in objs} >= {"Namespace", "ResourceQuota", "LimitRange", "RoleBinding", "NetworkPolicy"}
    for obj in objs:
        assert validate_builtin(obj, "1.35") == [], (obj["kind"], obj["metadata"]["name"])
    broken = {**objs[1], "spec": {"hardd": {"pods": "1"}}}  # a misspelt field: strict validation refuses it
    assert validate_builtin(broken, "1.35") != []


# ---------------------------------------------------------------- a default priority for pods that name none


def apply_default_priority(pod: dict[str, Any], namespace_labels: dict[str, str]) -> dict[str, Any] | None:
    """The policy as the API server runs it: the match condition, then the JSONPatch (its `JSONPatch{...}` objects
    read as maps: the offline CEL engine lacks the type), then None when the policy does not match."""
    import copy

    from components.teams import NO_PRIORITY_CLASS, default_priority_patch
    from schemas import evaluate_cel

    if not evaluate_cel(NO_PRIORITY_CLASS, {"object": pod}):
        return None
    expression = default_priority_patch().replace("JSONPatch{", "{").replace("op:", '"op":').replace("path:", '"path":')
    expression = expression.replace("value:", '"value":')
    patch = evaluate_cel(expression, {"object": pod, "namespaceObject": {"metadata": {"labels": namespace_labels}}})
    out = copy.deepcopy(pod)
    for op in patch:
        field = op["path"].removeprefix("/spec/")
        if op["op"] == "add":
            out["spec"][field] = op["value"]
        else:
            assert op["op"] == "remove" and field in out["spec"]  # removing a missing path fails the request
            del out["spec"][field]
    return out


def test_on_kubernetes_1_36_pods_without_a_class_get_their_teams_default(tmp_path: Any) -> None:
    from schemas import validate_builtin

    def k136(c: dict[str, Any]) -> None:
        c["ml-platform:cluster"]["kubernetesVersion"] = "1.36"

    plan = plan_variant(tmp_path, "prod", k136)
    [policy] = objects(plan, "MutatingAdmissionPolicy").values()
    [binding] = objects(plan, "MutatingAdmissionPolicyBinding").values()
    assert validate_builtin(policy, "1.36") == [] and validate_builtin(binding, "1.36") == []
    assert policy["spec"]["matchConstraints"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "ml-platform.io/default-priority", "operator": "Exists"}]
    }
    namespace = objects(plan, "Namespace")["research"]["metadata"]["labels"]
    assert namespace["ml-platform.io/default-priority"] == "training-critical"
    # after the Priority plugin's first pass (no global default: 0, PreemptLowerPriority)
    pod = {"spec": {"containers": [{"name": "t"}], "priority": 0, "preemptionPolicy": "PreemptLowerPriority"}}
    assert apply_default_priority(pod, namespace) == {
        # the plugin runs again and fills in the class's value and preemption policy
        "spec": {"containers": [{"name": "t"}], "priorityClassName": "training-critical"}
    }
    named = {"spec": {"containers": [{"name": "t"}], "priorityClassName": "development", "priority": 100}}
    assert apply_default_priority(named, namespace) is None  # a class the pod names is kept
    bare = {"spec": {"containers": [{"name": "t"}]}}
    assert apply_default_priority(bare, namespace) == {
        "spec": {"containers": [{"name": "t"}], "priorityClassName": "training-critical"}
    }


def test_before_kubernetes_1_36_no_policy_and_the_policy_pack_asks_for_a_class() -> None:
    plan = plan_of("prod")  # 1.35: MutatingAdmissionPolicy's beta API is off on EKS and GKE
    assert not objects(plan, "MutatingAdmissionPolicy")
    from rules import RULES  # the policy pack's rule table

    assert "gpu-priority-class" in {rule.id for rule in RULES}
