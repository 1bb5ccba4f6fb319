"""`make plan STACK=<stack>`: the offline plan. Runs the real program under Pulumi's mocks, checks the platform
invariants, prints a summary (resources by type, GPU pools, EC2 quotas, warnings) and writes

- build/<stack>/resources.json: a list with one entry per declared resource, sorted by URN:
  {type, name, urn, parent, provider, protect, retainOnDelete, ignoreChanges, replaceOnChanges,
  deleteBeforeReplace, dependencies, inputs};
- build/<stack>/manifests/: every Kubernetes object and custom resource the program declares, as YAML;
- build/<stack>/cost.json: the cost and capacity figures of the summary (tools/cost.py), which `make plan-diff`
  compares: {idleMonthlyUsd, maxGpuSpotHourlyUsd, maxGpuOnDemandHourlyUsd, promisedGpus, missingPrices,
  spotAtOnDemand}.

--out writes elsewhere, but only into a new or empty folder or one an earlier plan wrote (it holds a
.ml-platform-plan marker); only resources.json, cost.json and manifests/*.yaml are ever replaced.

Exit 0 on a clean plan; exit 1 with every config problem (each naming its key), a broken invariant or an
output folder it will not write to; no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The policy rules know how a Pulumi Kubernetes resource maps to the object it creates.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))

from components.gpu_pools import ResolvedGpuPool, platform_facts
from components.queueing import team_flavor_quotas
from components.team_quotas import capacity_rows
from components.teams import allowed_priorities
from rules import kubernetes_object
from tools.cost import CostSummary, PriceTableError, cost_lines, stack_cost
from tools.invariants import INVARIANTS, PlanView, check_plan
from tools.offline import PROJECT_DIR, PlanResult, Registration, StackFileError, read_stack_file, redact, run_stack
from tools.workload_summary import operator_lines, storage_lines
from vocabulary.namespaces import MONITORING_NAMESPACE
from vocabulary.queues import COHORT, LOCAL_QUEUE, SPARE_QUEUE

# Stack names are DNS labels here: they become folder names (build/<stack>) and must never climb out of build/.
STACK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MARKER = ".ml-platform-plan"


def manifest(reg: Registration) -> dict[str, Any] | None:
    """The object a Kubernetes registration creates, secrets redacted (None for Helm releases and providers)."""
    return kubernetes_object(reg.type, redact(reg.inputs))


def manifest_filename(index: int, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    parts = [f"{index:03d}", obj["kind"].lower(), meta.get("namespace", ""), meta.get("name", "")]
    return "-".join(p for p in parts if p) + ".yaml"


class PlanOutputError(Exception):
    """The output folder is one the plan must not write into."""


def prepare_out_dir(out_dir: Path, legacy_ok: bool = False) -> None:
    """Make `out_dir` ready for a plan without deleting anything the plan did not write: it must be new, empty, or
    marked as a plan's (then only the previous plan's resources.json and manifests/*.yaml go). `legacy_ok`: the
    default build/<stack> of plans from before the marker (resources.json and manifests/ only) is ours too."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise PlanOutputError(f"{out_dir}: not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        legacy = legacy_ok and {p.name for p in out_dir.iterdir()} <= {"resources.json", "manifests"}
        if not (out_dir / MARKER).is_file() and not legacy:
            raise PlanOutputError(
                f"{out_dir}: not empty and not written by `make plan`; nothing was written (use a new or empty folder)"
            )
        manifests = out_dir / "manifests"
        if manifests.is_symlink() or (manifests.exists() and not manifests.is_dir()):
            raise PlanOutputError(f"{manifests}: not a folder the plan wrote")
        (out_dir / "resources.json").unlink(missing_ok=True)
        (out_dir / "cost.json").unlink(missing_ok=True)
        for old in manifests.glob("*.yaml") if manifests.is_dir() else ():
            old.unlink()
    (out_dir / "manifests").mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(
        "Written by tools/plan.py: it replaces resources.json, cost.json and manifests/*.yaml here.\n"
    )


# libyaml's emitter when PyYAML has it (the same YAML, several times faster: plans of many teams write thousands).
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_plan(result: PlanResult, out_dir: Path, legacy_ok: bool = False) -> list[Path]:
    prepare_out_dir(out_dir, legacy_ok)
    manifests_dir = out_dir / "manifests"
    # Registration order follows when each resource's inputs resolved, which varies from run to run: sort by URN
    # so the plan files diff cleanly in a pull request.
    ordered = sorted(result.registrations, key=lambda r: r.urn)
    resources = [r.to_json() for r in ordered]
    (out_dir / "resources.json").write_text(json.dumps(resources, indent=2, default=str) + "\n")
    written: list[Path] = []
    for reg in ordered:
        obj = manifest(reg)
        if obj is not None:
            path = manifests_dir / manifest_filename(len(written) + 1, obj)
            path.write_text(yaml.dump(obj, Dumper=SAFE_DUMPER, sort_keys=False))
            written.append(path)
    return written


def advertised(pool: ResolvedGpuPool) -> str:
    """What one node advertises: `8 x nvidia.com/gpu`, `56 x nvidia.com/mig-1g.10gb`, `4 x nvidia.com/gpu
    (time-sliced x4)`."""
    text = " + ".join(f"{count} x {resource}" for resource, count in pool.advertised.items())
    sharing = pool.config.sharing
    if sharing.mode == "time-slicing":
        text += f" (time-sliced x{sharing.replicas})"
    elif sharing.mode == "mig":
        text += f" (MIG {pool.mig_config or sharing.profile})"
    return text


GPU_STACK_NAMES = {
    "operator": "GPU Operator",
    "bottlerocket": "Bottlerocket's device plugin",
    "gke": "GKE-managed",
}


def gpu_stack(pool: ResolvedGpuPool) -> str:
    stacks = {pool.gpu_stack(karpenter=False)} if pool.node_groups or pool.cloud != "aws" else set()
    stacks |= {pool.gpu_stack(karpenter=True)} if pool.karpenter_node_pools else set()
    return " + ".join(GPU_STACK_NAMES[s] for s in sorted(stacks or {pool.gpu_stack()}))


def pool_lines(plan: PlanView) -> list[str]:
    config = plan.config
    width = max([14, *(len(p.name) for p in plan.pools)])
    lines = [f"GPU pools ({config.cluster.cloud}, autoscaler {config.autoscaler}):"]
    if not plan.pools:
        lines.append("  (none)")

    def kind_of(s: dict[str, Any]) -> str:
        return str(s["instanceType"]) + (
            f" + {s['gpusPerNode']}x {s['acceleratorType']}" if s["acceleratorType"] else ""
        )

    kind_width = max([14, *(len(kind_of(p.summary())) for p in plan.pools)])
    capacity_width = max([15, *(len("/".join(p.capacity_types)) for p in plan.pools)])
    totals: Counter[str] = Counter()  # EC2 quota -> vCPUs, over every pool
    for pool in plan.pools:
        s = pool.summary()
        kind = kind_of(s)
        per_type = " per capacity type" if len(s["capacity"]) > 1 else ""
        lines.append(
            f"  {s['name']:<{width}} {s['gpu']:<10} {kind:<{kind_width}} {'/'.join(s['capacity']):<{capacity_width}} "
            f"nodes {s['minNodes']}..{s['maxNodes']}{per_type}  max GPUs {s['maxGpus']}{per_type}  "
            f"{'scales to zero' if s['scalesToZero'] else 'always on: ' + str(s['minNodes'])}"
        )
        lines.append(f"  {'':<{width}} {gpu_stack(pool)}: {advertised(pool)} per node")
        if (r := pool.config.reservations) is not None:
            named = [*r.ids, *(f"tags {k}={v}" for k, v in r.tags.items())]
            kind = "Capacity Blocks" if r.capacity_block else "capacity reservations"
            zone = f" in {r.availability_zone}" if r.availability_zone else ""
            lines.append(f"  {'':<{width}} reserved: {kind} " + ", ".join(named) + zone)
        quotas = pool.ec2_quotas()
        totals.update(quotas)
        if quotas:
            lines.append(
                f"  {'':<{width}} EC2 quota at maxNodes: "
                + "; ".join(f"{name} {vcpus} vCPUs" for name, vcpus in quotas.items())
            )
        if pool.cloud == "existing":
            for capacity in pool.capacity_types:
                labels = pool.node_labels(capacity, "operator")
                taint = pool.taint
                lines.append(
                    f"  {'':<{width}} label its {capacity} nodes: "
                    + " ".join(f"{k}={v}" for k, v in labels.items())
                    + f"; taint {taint.key}={taint.value}:{taint.effect}"
                )
    if totals:
        lines.append(
            f"EC2 vCPU quotas to request in {config.cluster.region} (every pool at maxNodes; new accounts have 0): "
            + "; ".join(f"{name} {vcpus}" for name, vcpus in totals.items())
        )
    return lines


def team_lines(plan: PlanView) -> list[str]:
    """What the plan creates for the teams, read from the planned objects: the priority classes, the flavors and
    queues, and per team its namespace, GPU quota by resource name (guaranteed + borrowable), priorities, queue and
    the objects in its namespace; then the teams' quotas next to what the pools can ever provide."""
    config, pools = plan.config, plan.pools
    facts = platform_facts(config)

    def named(kind: str, namespace: str | None = None) -> list[str]:
        """Sorted: registration order varies from run to run."""
        return sorted(
            str(o["metadata"]["name"])
            for o in plan.objects(kind)
            if namespace is None or o["metadata"].get("namespace") == namespace
        )

    # Numbers come back from the runtime as floats.
    classes = {str(o["metadata"]["name"]): int(o.get("value") or 0) for o in plan.objects("PriorityClass")}
    lines = [
        "Priority classes: "
        + ", ".join(f"{n} {v}" for n, v in sorted(classes.items(), key=lambda c: -c[1]))
        + f"; WorkloadPriorityClasses: {', '.join(named('WorkloadPriorityClass')) or 'none'}",
        f"Kueue: ResourceFlavors {', '.join(named('ResourceFlavor')) or 'none'}; ClusterQueues in cohort "
        f"{COHORT}: {', '.join(named('ClusterQueue')) or 'none'}",
        f"Teams (each submits to the LocalQueue {LOCAL_QUEUE!r} in its namespace):",
    ]
    if not config.teams:
        lines.append("  (none)")
    width = max([10, *(len(t.name) for t in config.teams)])
    pad = " " * (width + 3)
    for team in config.teams:
        flavors = team_flavor_quotas(team, pools)
        gpus = ", ".join(f"{res} {n} (+{b}) in {f}" for f, (res, n, b) in sorted(flavors.items())) or "no GPU pools"
        lines.append(
            f"  {team.name:<{width}} namespace {team.name}; GPUs (quota + borrowable): {gpus}; priority "
            f"{team.priority} (may use {', '.join(allowed_priorities(team))})"
        )
        views = [n for n in named("RoleBinding", MONITORING_NAMESPACE) if n == f"team-{team.name}-view"]
        lines.append(
            f"{pad}ResourceQuotas {', '.join(named('ResourceQuota', team.name))}; LimitRange "
            f"{', '.join(named('LimitRange', team.name))}; RoleBindings "
            f"{', '.join(named('RoleBinding', team.name) + [f'{MONITORING_NAMESPACE}/{v}' for v in views]) or 'none'}; "
            f"NetworkPolicies {', '.join(named('NetworkPolicy', team.name))}; LocalQueue "
            f"{', '.join(named('LocalQueue', team.name)) or 'none'}"
        )
    if config.teams and not facts.mutating_admission_policies:
        lines.append(
            f"  Pods that name no PriorityClass get priority 0 (Kubernetes {facts.kubernetes_version} has no "
            "MutatingAdmissionPolicy to default them; the gpu-priority-class rule reports GPU pods without one)"
        )
    rows = capacity_rows(config.teams, pools)
    if rows:
        lent = (
            f"; the spare is lent to the cohort by ClusterQueue {SPARE_QUEUE}"
            if SPARE_QUEUE in named("ClusterQueue")
            else ""
        )
        lines.append(f"GPU capacity (teams' quotas vs the pools with every capacity type at maxNodes{lent}):")
        key_width = max(len(r.key) for r in rows)
        resource_width = max(len(r.resource) for r in rows)
        for r in rows:
            flag = "  OVERCOMMITTED" if r.overcommitted else f"  spare {r.available - r.promised}"
            lines.append(
                f"  {r.key:<{key_width}} {r.resource:<{max(24, resource_width)}} promised {r.promised:5d}  pools "
                f"{r.available:5d}{flag}"
            )
    return lines


def summary(result: PlanResult, plan: PlanView, manifests: list[Path], cost: CostSummary, seconds: float) -> str:
    lines = [f"Offline plan of stack '{result.stack.stack}' ({seconds:.1f}s): {len(result.registrations)} resources"]
    by_type = Counter(r.type for r in result.registrations)
    lines += [f"  {count:4d}  {typ}" for typ, count in sorted(by_type.items())]
    lines.append(f"Kubernetes manifests: {len(manifests)}")
    lines += pool_lines(plan)
    lines += team_lines(plan)
    lines += operator_lines(plan)
    lines += storage_lines(plan)
    lines += cost_lines(cost, plan.config.cluster.cloud)
    lines.append(f"Platform invariants: {len(INVARIANTS)} hold")
    lines += [f"warning: {w}" for w in result.warnings]
    if result.stack.placeholders:
        lines.append(
            "Secret values replaced by placeholders (the CLI decrypts them): " + ", ".join(result.stack.placeholders)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--stack-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="output directory (default build/<stack>)")
    args = parser.parse_args(argv)

    if not STACK_NAME.fullmatch(args.stack):
        print(
            f"error: stack name {args.stack!r}: lowercase letters, digits and '-', at most 63 (like dev, prod)",
            file=sys.stderr,
        )
        return 1
    stack_path = args.stack_file or PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    if not stack_path.is_file():
        stacks = sorted(p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))
        print(f"error: no stack file {stack_path}; stacks: {', '.join(stacks)}", file=sys.stderr)
        return 1
    try:
        stack_file = read_stack_file(args.stack, PROJECT_DIR, stack_path)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    result = run_stack(stack_file)
    if result.error is not None:
        # The program names the file the CLI would read; name the one actually read.
        print(result.error.replace(f"in Pulumi.{args.stack}.yaml;", f"in {stack_path};", 1), file=sys.stderr)
        return 1
    plan = PlanView.of(result)
    if violations := check_plan(plan):
        lines = [f"{len(violations)} platform invariant(s) broken in {stack_path.name}; nothing was written:"]
        print("\n".join([*lines, *(f"  - {v}" for v in violations)]), file=sys.stderr)
        return 1
    try:
        cost = stack_cost(plan.config, plan.pools)
    except PriceTableError as exc:
        print(f"error: {exc}; nothing was written", file=sys.stderr)
        return 1
    out_dir = args.out or PROJECT_DIR / "build" / args.stack
    try:
        manifests = write_plan(result, out_dir, legacy_ok=args.out is None)
    except PlanOutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    (out_dir / "cost.json").write_text(json.dumps(cost.as_json(), indent=2) + "\n")
    print(summary(result, plan, manifests, cost, time.perf_counter() - start))
    shown = Path(os.path.relpath(out_dir)) if out_dir.resolve().is_relative_to(Path.cwd()) else out_dir
    print(f"Wrote {shown / 'resources.json'} and {len(manifests)} manifests under {shown / 'manifests'}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The mock runtime leaves an event loop in each gRPC worker thread; their finalizers can fail noisily at
    # interpreter exit once the file descriptors are gone. Nothing is left to clean up: leave directly.
    os._exit(code)
