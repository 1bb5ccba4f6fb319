"""In-cluster admission for the two mandatory GPU rules (policies/RULES.md), as ValidatingAdmissionPolicies.

Jobs submitted with kubectl, SDKs or CI never pass through Pulumi: the API server checks them. One policy per
workload kind (CEL that knows where that kind keeps its pod specs) and one binding each: `Deny` when the stack's
policies are mandatory (prod), `Warn` + `Audit` when advisory (dev). The platform's own namespaces are exempt.

The CEL here is built from small string functions so tests evaluate the very same expressions offline on the
shared good/bad corpus and compare them with policies/check.py.
"""

from __future__ import annotations

from typing import Any

from components.config.base import Enforcement
from components.config.policies import PoliciesConfig
from components.kube import register
from components.layer import Layer
from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import PLATFORM_OWNED_NAMESPACES
from vocabulary.policy_rules import LIMITS_RULE, SHM_PATH, SHM_RULE
from vocabulary.resources import GPU_RESOURCE, MIG_RESOURCE_PREFIX
from vocabulary.workloads import (
    KUBERAY_RAY_CONTAINER_INDEX,
    KUBERAY_SHM_SKIP_PARAM,
    KUBERAY_SHM_VOLUME,
    WORKLOAD_KINDS,
    WORKLOAD_KINDS_BY_KIND,
    Each,
    PodSpecs,
    Site,
    Step,
    TrainerResources,
    WorkloadKind,
)

EXEMPT_NAMESPACES = PLATFORM_OWNED_NAMESPACES


def _is_gpu_key(k: str) -> str:
    return f"({k} == '{GPU_RESOURCE}' || {k}.startsWith('{MIG_RESOURCE_PREFIX}'))"


def _q(value: str) -> str:
    """A quantity written as a number or a string (custom resources keep what the user wrote)."""
    return f"quantity(string({value}))"


def _positive(value: str) -> str:
    # An amount that is not a quantity counts as a GPU request: better a denial than a silent pass.
    return f"(!isQuantity(string({value})) || sign({_q(value)}) > 0)"


def _requests_gpus(c: str) -> str:
    """A container asks for GPUs: a GPU key with an amount > 0 in requests or limits."""

    def named_in(part: str) -> str:
        amounts = f"{c}.resources.{part}"
        return f"(has({amounts}) && {amounts}.exists(k, {_is_gpu_key('k')} && {_positive(f'{amounts}[k]')}))"

    return f"(has({c}.resources) && ({named_in('requests')} || {named_in('limits')}))"


# Mount paths as the container runtime compares them (policies/rules/mounts.py): segments without "" and ".", so
# "/dev/shm/", "//dev/shm" and "dev/shm" are /dev/shm. A path with ".." is not resolved (CEL has no fold): when it
# names dev and shm it may be /dev/shm, so it must be memory-backed too, but it never counts as the /dev/shm mount.
_SHM_SEGMENTS = "[" + ", ".join(f"'{s}'" for s in SHM_PATH.strip("/").split("/")) + "]"


def _at_shm(m: str) -> str:
    return f"(has({m}.mountPath) && {m}.mountPath.split('/').filter(s, s != '' && s != '.') == {_SHM_SEGMENTS})"


def _maybe_shm(m: str) -> str:
    """At /dev/shm, or at an unresolved ".." path that may be."""
    parts = f"{m}.mountPath.split('/')"
    names = " && ".join(f"{s} in {parts}" for s in _SHM_SEGMENTS.strip("[]").split(", "))
    return f"({_at_shm(m)} || (has({m}.mountPath) && {parts}.exists(s, s == '..') && {names}))"


def _mounts_shm(c: str) -> str:
    """Something is (or may be) mounted at /dev/shm."""
    return f"(has({c}.volumeMounts) && {c}.volumeMounts.exists(m, {_maybe_shm('m')}))"


def _memory(v: str) -> str:
    return f"(has({v}.emptyDir) && has({v}.emptyDir.medium) && {v}.emptyDir.medium == 'Memory')"


def _named_memory(spec: str, name: str) -> str:
    """The pod spec has a volume called `name`, and every volume of that name is a memory emptyDir."""
    named = f"has(v.name) && v.name == {name}"
    return (
        f"(has({spec}.volumes) && {spec}.volumes.exists(v, {named})"
        f" && {spec}.volumes.all(v, !({named}) || {_memory('v')}))"
    )


def _shm_ok(spec: str, c: str, ray_params: str | None = None) -> str:
    """The container mounts at /dev/shm a volume of this pod spec that is an emptyDir with medium Memory, and every
    mount that is (or may be) at /dev/shm is memory-backed: with two (`/dev/shm` and `/dev/shm/` both pass the API
    server) the runtime decides which one wins.

    With `ray_params` (a KubeRay group's rayStartParams, c its Ray container), what KubeRay's BuildPod adds counts
    too: unless rayStartParams has plasma-directory or c mounts something at exactly "/dev/shm", c gets the pod's
    shared-mem volume there, a new memory emptyDir when the pod has none of that name (policies/rules/podspecs.py)."""
    own_ok = (
        f"(!has({c}.volumeMounts) || {c}.volumeMounts.all(m, !{_maybe_shm('m')}"
        f" || (has(m.name) && m.name != '' && {_named_memory(spec, 'm.name')})))"
    )
    mounted = f"(has({c}.volumeMounts) && {c}.volumeMounts.exists(m, {_at_shm('m')}))"
    if ray_params is None:
        return f"({own_ok} && {mounted})"
    injects = (
        f"(!(has({ray_params}) && '{KUBERAY_SHM_SKIP_PARAM}' in {ray_params})"
        f" && !(has({c}.volumeMounts) && {c}.volumeMounts.exists(m, has(m.mountPath) && m.mountPath == '{SHM_PATH}')))"
    )
    named = f"has(v.name) && v.name == '{KUBERAY_SHM_VOLUME}'"
    shared_mem_ok = f"(!has({spec}.volumes) || {spec}.volumes.all(v, !({named}) || {_memory('v')}))"
    return f"({own_ok} && ({injects} ? {shared_mem_ok} : {mounted}))"


def _whole(value: str) -> str:
    """A whole number of devices whatever its spelling ("4", "4.0", "4000m"); isInteger() depends on the spelling."""
    return f"{_q(value)}.compareTo(quantity(string(int({_q(value)}.asApproximateFloat())))) == 0"


def _limits_ok(r: str) -> str:
    """Every GPU request has a limit of the same quantity, a whole, non-negative number of devices (Kubernetes
    quantity library). A limit without a request is the request too: the API server copies it (policies/rules/
    defaulting.py). A ValidatingAdmissionPolicy sees a Pod after that defaulting, but a pod template or a custom
    resource as written, so the copy is made here as well."""
    request, limit = f"{r}.requests[k]", f"{r}.limits[k]"
    requested = (
        f"(!has({r}.requests) || {r}.requests.all(k, !{_is_gpu_key('k')} || (has({r}.limits) && k in {r}.limits"
        f" && isQuantity(string({request})) && isQuantity(string({limit}))"
        f" && {_q(limit)}.compareTo({_q(request)}) == 0 && {_whole(request)} && sign({_q(request)}) >= 0)))"
    )
    defaulted = (
        f"(!has({r}.limits) || {r}.limits.all(k, !{_is_gpu_key('k')} || (has({r}.requests) && k in {r}.requests)"
        f" || (isQuantity(string({limit})) && {_whole(limit)} && sign({_q(limit)}) >= 0)))"
    )
    return f"({requested} && {defaulted})"


def _container_ok(rule: str, spec: str, c: str, ray_params: str | None = None) -> str:
    if rule == SHM_RULE:
        shm = _shm_ok(spec, c)
        if ray_params is not None:
            # KubeRay's Ray container is the first: compared by value (container names are unique in a pod).
            ray = f"{spec}.containers[{KUBERAY_RAY_CONTAINER_INDEX}]"
            shm = f"({c} == {ray} ? {_shm_ok(spec, c, ray_params)} : {shm})"
        return f"(!{_requests_gpus(c)} || {shm})"
    return f"(!has({c}.resources) || {_limits_ok(f'{c}.resources')})"


def _pod_ok(rule: str, spec: str, extras: tuple[str, ...] = (), ray_params: str | None = None) -> str:
    """Every container of the pod spec passes: containers, initContainers and named extra containers (KServe)."""
    parts = [
        f"(!has({spec}.containers) || {spec}.containers.all(c, {_container_ok(rule, spec, 'c', ray_params)}))",
        f"(!has({spec}.initContainers) || {spec}.initContainers.all(c, {_container_ok(rule, spec, 'c')}))",
    ]
    parts += [f"(!has({spec}.{f}) || {_container_ok(rule, spec, f'{spec}.{f}')})" for f in extras]
    return "(" + " && ".join(parts) + ")"


def _guard(path: str, expression: str) -> str:
    """`path` may be absent at any step: absent means nothing to check."""
    parts = path.split(".")
    # has() takes a field selection; a step that ends in an index (map[key]) is known to exist.
    checks = [f"has({'.'.join(parts[: i + 1])})" for i in range(1, len(parts)) if not parts[i].endswith("]")]
    return f"(!({' && '.join(checks)}) || {expression})"


def _steps_ok(rule: str, site: PodSpecs, steps: tuple[Step, ...], at: str) -> str:
    """CEL for the pod specs at `steps` below `at`: each field path guarded, each `Each` an all()."""
    if not steps:
        if site.ray is not None:  # `at` is a KubeRay group: its pod spec is the template's
            spec = f"{at}.{site.ray.template}"
            params = f"{at}.{site.ray.start_params}"
            return _guard(spec, _pod_ok(rule, spec, site.extra_containers, ray_params=params))
        return _pod_ok(rule, at, site.extra_containers)
    step, rest = steps[0], steps[1:]
    if isinstance(step, Each):
        items = f"{at}.{step.field}"
        item = f"{items}[{step.var}]" if step.map else step.var
        return _guard(items, f"{items}.all({step.var}, {_steps_ok(rule, site, rest, item)})")
    return _guard(f"{at}.{step}", _steps_ok(rule, site, rest, f"{at}.{step}"))


def _site_ok(rule: str, site: Site, at: str, o: str) -> str | None:
    if isinstance(site, TrainerResources):
        if rule != LIMITS_RULE:
            return None  # no pod spec here: /dev/shm is checked on the runtime's pods
        # resourcesPerNode holds the trainer container's resources (its pod spec lives in the runtime).
        resources = f"{o}.{site.path}.{site.resources}"
        return _guard(resources, _limits_ok(resources))
    return _steps_ok(rule, site, site.steps, at)


def object_ok(kind: str, rule: str, o: str = "object") -> str:
    """CEL that is true when the object bound to `o` passes `rule` in every pod spec it carries."""
    workload = WORKLOAD_KINDS_BY_KIND.get(kind)
    if workload is None:
        raise ValueError(f"no admission expression for kind {kind}")
    at = f"{o}.{workload.root}" if workload.root else o
    parts = [p for site in workload.sites if (p := _site_ok(rule, site, at, o)) is not None]
    body = parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"
    return _guard(at, body) if workload.root else body


def validation_expression(kind: str, rule: str) -> str:
    """The policy's validation: the object passes, or an UPDATE of an object that already failed (so controllers
    can still remove finalizers or scale down objects admitted before the policy, or while it only warned)."""
    return f"{object_ok(kind, rule)} || (request.operation == 'UPDATE' && !{object_ok(kind, rule, 'oldObject')})"


MESSAGES = {
    SHM_RULE: "gpu-shm-memory-volume: every container that requests GPUs must mount an emptyDir with medium: Memory "
    "at /dev/shm (PyTorch data loaders, NCCL and Ray fail on the 64 MB default)",
    LIMITS_RULE: "gpu-limits-match-requests: every GPU request needs a limit with the same quantity, a whole number "
    "of devices (a limit alone becomes the request)",
}


def policy_name(target: WorkloadKind) -> str:
    return f"ml-platform-gpu-{target.kind.lower()}"


def admission_policy(target: WorkloadKind) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy_name(target), "labels": dict(MANAGED_BY)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [target.group],
                        "apiVersions": list(target.versions),
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [target.resource],
                    }
                ]
            },
            "validations": [
                {"expression": validation_expression(target.kind, rule), "message": MESSAGES[rule], "reason": "Invalid"}
                for rule in (SHM_RULE, LIMITS_RULE)
            ],
        },
    }


def validation_actions(enforcement: Enforcement | None) -> list[str]:
    return ["Deny"] if enforcement == "mandatory" else ["Warn", "Audit"]


def match_resources(extra_exempt: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every namespace except the platform's own and the configured ones."""
    exempt = list(dict.fromkeys([*EXEMPT_NAMESPACES, *extra_exempt]))
    selector = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": exempt}
    return {"namespaceSelector": {"matchExpressions": [selector]}}


def admission_binding(
    target: WorkloadKind, enforcement: Enforcement | None, extra_exempt: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name(target), "labels": dict(MANAGED_BY)},
        "spec": {
            "policyName": policy_name(target),
            "validationActions": validation_actions(enforcement),
            "matchResources": match_resources(extra_exempt),
        },
    }


def admission_objects(enforcement: Enforcement | None, extra_exempt: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for target in WORKLOAD_KINDS:
        objects += [admission_policy(target), admission_binding(target, enforcement, extra_exempt)]
    return objects


class AdmissionPolicies(Layer[PoliciesConfig]):
    """The cluster's own enforcement of the mandatory rules (`ml-platform:policies`)."""

    TYPE = "ml-platform:policy:AdmissionPolicies"

    def build(self) -> dict[str, Any]:
        section, child = self.section, self.in_cluster()
        exempt = tuple(section.exempt_namespaces)
        policies = {}
        for obj in admission_objects(section.enforcement, exempt):
            if obj["kind"] == "ValidatingAdmissionPolicy":
                policies[obj["metadata"]["name"]] = register(obj, child)
            else:
                # A binding to a policy that does not exist yet is rejected: policy first.
                register(obj, self.in_cluster(policies[obj["spec"]["policyName"]]))
        if section.default_shm:
            policy, binding = default_shm_objects(exempt)
            register(binding, self.in_cluster(register(policy, child)))
        return {}


# ---------------------------------------------------------------- opt-in default /dev/shm (Kubernetes >= 1.36)

DEFAULT_SHM_POLICY = "ml-platform-gpu-default-shm"


def default_shm_match_condition() -> str:
    """GPU pods in which nothing is mounted at /dev/shm and no `dshm` volume exists: safe to add one."""
    return (
        f"object.spec.containers.exists(c, {_requests_gpus('c')})"
        f" && !object.spec.containers.exists(c, {_mounts_shm('c')})"
        " && !(has(object.spec.volumes) && object.spec.volumes.exists(v, v.name == 'dshm'))"
    )


def default_shm_mutation() -> str:
    """Server-side-apply configuration: add the volume, and mount it in every GPU container (containers and
    volumes are list-maps keyed by name, volumeMounts by mountPath, so nothing else changes)."""
    return (
        "Object{spec: Object.spec{"
        'volumes: [Object.spec.volumes{name: "dshm", emptyDir: Object.spec.volumes.emptyDir{medium: "Memory", '
        'sizeLimit: "16Gi"}}], '
        f"containers: object.spec.containers.filter(c, {_requests_gpus('c')}).map(c, Object.spec.containers{{"
        'name: c.name, volumeMounts: [Object.spec.containers.volumeMounts{name: "dshm", mountPath: "/dev/shm"}]})'
        "}}"
    )


def default_shm_objects(extra_exempt: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    meta = {"name": DEFAULT_SHM_POLICY, "labels": dict(MANAGED_BY)}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": meta,
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                ]
            },
            "matchConditions": [{"name": "gpu-pod-without-shm", "expression": default_shm_match_condition()}],
            "mutations": [
                {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": default_shm_mutation()}}
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": dict(meta),
        "spec": {
            "policyName": DEFAULT_SHM_POLICY,
            "matchResources": match_resources(extra_exempt),
        },
    }
    return [policy, binding]
