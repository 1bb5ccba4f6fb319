"""Storage invariants: what the platform's pod templates mount and run as exists where they run, each team's
volume has a class that provisions it, and each team's checkpoint identity reaches its own prefix only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView
from vocabulary.labels import LABEL_TEAM
from vocabulary.storage import CHECKPOINT_PREFIX, CHECKPOINT_SERVICE_ACCOUNT

ID = "team-storage-reachable"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"


def _templates(plan: PlanView, teams: list[str]) -> Iterator[tuple[str, list[str], dict[str, Any]]]:
    """(what, the namespaces its pods run in, pod spec) of every pod template the platform declares for teams."""
    for cluster in plan.objects("RayCluster"):
        spec, namespace = cluster.get("spec", {}), cluster["metadata"].get("namespace", "")
        groups = [spec.get("headGroupSpec", {}), *spec.get("workerGroupSpecs", [])]
        for group in groups:
            yield (
                f"RayCluster {namespace}/{cluster['metadata']['name']}",
                [namespace],
                group.get("template", {}).get("spec", {}),
            )
    for runtime in plan.objects("ClusterTrainingRuntime"):
        # cluster-wide: its TrainJobs run in every team namespace
        for job in runtime.get("spec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", []):
            pod = job.get("template", {}).get("spec", {}).get("template", {}).get("spec", {})
            yield f"ClusterTrainingRuntime {runtime['metadata']['name']}", teams, pod


def _planned(plan: PlanView, kind: str) -> set[tuple[str, str]]:
    return {(str(o["metadata"].get("namespace")), str(o["metadata"]["name"])) for o in plan.objects(kind)}


def check_templates_find_their_storage(plan: PlanView) -> Iterator[Violation]:
    teams = sorted(
        str(ns["metadata"]["name"])
        for ns in plan.objects("Namespace")
        if LABEL_TEAM in (ns["metadata"].get("labels") or {})
    )
    claims, accounts, configs = (_planned(plan, k) for k in ("PersistentVolumeClaim", "ServiceAccount", "ConfigMap"))
    for what, namespaces, pod in _templates(plan, teams):
        needed = [
            ("PersistentVolumeClaim", claims, v["persistentVolumeClaim"]["claimName"])
            for v in pod.get("volumes", [])
            if "persistentVolumeClaim" in v
        ]
        if (account := pod.get("serviceAccountName")) is not None:
            needed.append(("ServiceAccount", accounts, account))
        needed += [
            ("ConfigMap", configs, ref["configMapRef"]["name"])
            for c in pod.get("containers", [])
            for ref in c.get("envFrom", [])
            if "configMapRef" in ref and not ref["configMapRef"].get("optional")
        ]
        for namespace in namespaces:
            for kind, planned, name in needed:
                if (namespace, name) not in planned:
                    yield Violation(
                        ID, what, f"its pods in namespace {namespace} need {kind} {name}, not planned there"
                    )


def check_claims_have_a_class(plan: PlanView) -> Iterator[Violation]:
    classes = {str(c["metadata"]["name"]) for c in plan.objects("StorageClass")}
    shared = plan.config.storage.shared_filesystem
    if shared.type == "existing" and shared.storage_class_name:
        classes.add(shared.storage_class_name)  # the cluster owner's
    for claim in plan.objects("PersistentVolumeClaim"):
        wanted = claim.get("spec", {}).get("storageClassName")
        if wanted not in classes:
            meta = claim["metadata"]
            yield Violation(
                ID,
                f"PersistentVolumeClaim {meta.get('namespace')}/{meta['name']}",
                f"StorageClass {wanted} is not planned",
            )


def _role_name(arn: Any) -> str:
    """The logical name in an offline plan's ARN placeholder `<name.arn>`."""
    return str(arn).removeprefix("<").removesuffix(".arn>")


def check_identities_reach_their_own_prefix(plan: PlanView) -> Iterator[Violation]:
    """Every team's checkpoint ServiceAccount is bound to an identity, and that identity's grants name the team's
    prefix and no other."""
    accounts = [(ns, name) for ns, name in _planned(plan, "ServiceAccount") if name == CHECKPOINT_SERVICE_ACCOUNT]
    associations = {
        (str(a.inputs["namespace"]), str(a.inputs["serviceAccount"])): a.inputs for a in plan.of_type(POD_IDENTITY)
    }
    policies = {r.name: r.inputs.get("policy") for r in plan.of_type(ROLE_POLICY)}
    members = [m.inputs for m in plan.of_type(FOLDER_MEMBER)]
    for namespace, account in sorted(accounts):
        subject = f"ServiceAccount {namespace}/{account}"
        prefix = f"{CHECKPOINT_PREFIX}{namespace}/"
        if plan.config.cluster.cloud == "aws":
            association = associations.get((namespace, account))
            if association is None:
                yield Violation(ID, subject, "no EKS Pod Identity association binds it to a role")
                continue
            document = policies.get(_role_name(association["roleArn"]))
            if document is None:
                yield Violation(ID, subject, f"its role {_role_name(association['roleArn'])} has no policy")
                continue
            resources = {
                r
                for s in json.loads(str(document)).get("Statement", [])
                for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
                if "/" in r.split(":::", 1)[-1]
            }
            wrong = sorted(r for r in resources if not r.split(":::", 1)[-1].split("/", 1)[1].startswith(prefix))
            if not resources or wrong:
                yield Violation(ID, subject, f"its role reaches objects outside {prefix}: {', '.join(wrong) or 'none'}")
        else:
            bound = [m for m in members if str(m.get("member", "")).endswith(f"/subject/ns/{namespace}/sa/{account}")]
            if not bound:
                yield Violation(ID, subject, "no Workload Identity grant names it")
            for member in bound:
                if member.get("managedFolder") != prefix:
                    yield Violation(ID, subject, f"granted on {member.get('managedFolder')}, not {prefix}")


def check_team_storage(plan: PlanView) -> Iterator[Violation]:
    yield from check_templates_find_their_storage(plan)
    yield from check_claims_have_a_class(plan)
    yield from check_identities_reach_their_own_prefix(plan)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        ID,
        "The volumes, ServiceAccount and ConfigMap the platform's pod templates use exist in every namespace they run "
        "in; every team volume has a StorageClass; every team's checkpoint identity is bound and reaches only "
        "teams/<team>/.",
        check_team_storage,
    ),
)
