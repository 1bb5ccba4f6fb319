"""`make plan-diff BASE=<git ref>`: how a change moves the money and the size of every stack, as Markdown.

Plans every stack twice, offline: at BASE (checked out in a temporary git worktree, removed afterwards) and in the
working tree, then compares the resource counts by type and the cost and capacity figures (`cost.json`: idle
$/month, the most the GPU pools can burn per hour on spot and on demand, the GPUs promised to each team). Works in
a fresh clone: BASE only has to be a commit git knows (fetch it first, e.g. `git fetch origin main`).

Exit 0 with the report (a stack the base cannot plan, e.g. a broken stack file the change fixes, is reported as
such); exit 1 with one `error:` line when BASE is unknown or the working tree's plan fails; 2 for a usage error
(argparse); 130 when interrupted.
The temporary worktree is removed in every case, SIGTERM (a cancelled CI run) included.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StackPlan:
    resources: Counter[str]
    cost: dict[str, Any] | None  # None: the plan at that commit wrote no cost.json (before it existed)
    failed: str | None = None  # why the plan could not be made at that commit


class DiffError(Exception):
    pass


def _git(*args: str, cwd: Path = PROJECT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def stacks(root: Path) -> list[str]:
    return sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))


def plan(root: Path, stack: str, out: Path) -> StackPlan | None:
    """The plan of `stack` as the code at `root` makes it (None when that commit has no such stack)."""
    if not (root / f"Pulumi.{stack}.yaml").is_file():
        return None
    done = subprocess.run(
        [sys.executable, str(root / "tools" / "plan.py"), stack, "--out", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise DiffError(f"the plan of {stack} at {root} failed: {(done.stderr or done.stdout).strip()[:500]}")
    resources = Counter(r["type"] for r in json.loads((out / "resources.json").read_text()))
    cost_file = out / "cost.json"
    return StackPlan(resources, json.loads(cost_file.read_text()) if cost_file.is_file() else None)


def base_plan(root: Path, stack: str, out: Path) -> StackPlan | None:
    """The base's plan; a base that cannot plan a stack is reported, not fatal (the change may fix it)."""
    try:
        return plan(root, stack, out)
    except DiffError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "failed"
        return StackPlan(Counter(), None, first[:300])


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the worktree cleanup


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _change(before: float | None, after: float | None, unit: str = "") -> str:
    if before == after:
        return f"{_money(after)}{unit}"
    delta = (
        "" if before is None or after is None else f" ({'+' if after >= before else '-'}{_money(abs(after - before))})"
    )
    return f"{_money(before)}{unit} → {_money(after)}{unit}{delta}"


def _promised(cost: dict[str, Any] | None) -> dict[str, str]:
    if cost is None:
        return {}
    return {
        team: ", ".join(f"{key} {n[0]} (+{n[1]})" for key, n in sorted(keys.items())) or "no GPUs"
        for team, keys in cost["promisedGpus"].items()
    }


def report(base_ref: str, base: dict[str, StackPlan | None], head: dict[str, StackPlan | None]) -> str:
    lines = [f"## Plan diff: `{base_ref}` → this change", ""]
    lines += [
        "| stack | resources | idle $/month | max GPU $/h spot | max GPU $/h on-demand |",
        "|---|---|---|---|---|",
    ]
    details: list[str] = []
    for stack in sorted(set(base) | set(head)):
        old, new = base.get(stack), head.get(stack)
        if new is None or old is None:
            lines.append(f"| {stack} | {'removed' if new is None else 'new stack'} | | | |")
            continue
        if old.failed is not None:
            lines.append(f"| {stack} | no plan at the base | | | |")
            details.append(f"**{stack}**: the base could not be planned: {old.failed}")
            continue
        count_old, count_new = sum(old.resources.values()), sum(new.resources.values())
        counts = f"{count_old}" if count_old == count_new else f"{count_old} → {count_new} ({count_new - count_old:+d})"

        def figure(plan: StackPlan, key: str) -> float | None:
            return None if plan.cost is None else plan.cost.get(key)

        lines.append(
            f"| {stack} | {counts} | {_change(figure(old, 'idleMonthlyUsd'), figure(new, 'idleMonthlyUsd'))} | "
            f"{_change(figure(old, 'maxGpuSpotHourlyUsd'), figure(new, 'maxGpuSpotHourlyUsd'))} | "
            f"{_change(figure(old, 'maxGpuOnDemandHourlyUsd'), figure(new, 'maxGpuOnDemandHourlyUsd'))} |"
        )
        changed = sorted(t for t in set(old.resources) | set(new.resources) if old.resources[t] != new.resources[t])
        if changed:
            details.append(
                f"**{stack}**: " + ", ".join(f"`{t}` {old.resources[t]} → {new.resources[t]}" for t in changed)
            )
        before, after = _promised(old.cost), _promised(new.cost)
        for team in sorted(set(before) | set(after)) if old.cost is not None and new.cost is not None else ():
            if before.get(team) != after.get(team):
                details.append(
                    f"**{stack}**: GPUs promised to {team}: {before.get(team, 'none')} → {after.get(team, 'none')}"
                )
    lines += ["", *(f"- {d}" for d in details)] if details else ["", "No resource type or promised GPU changed."]
    lines += [
        "",
        "Figures: list prices from `tools/prices.tsv` (`make plan` explains them); n/a: not computed at that commit.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="git ref to compare with, e.g. HEAD~1 or origin/main")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return _diff(args.base)
    except KeyboardInterrupt:
        print("error: interrupted; the temporary worktree was removed", file=sys.stderr)
        return 130


def _diff(base_ref: str) -> int:
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{base_ref}^{{commit}}")
    except DiffError:
        print(f"error: {base_ref!r} is not a commit this repository knows (git fetch it first)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="plan-diff-") as tmp:
        worktree = Path(tmp) / "base"
        try:
            _git("worktree", "add", "--detach", "--quiet", str(worktree), commit)
            try:
                # The base's stacks, planned by the base's code (with this .venv's packages).
                every = sorted(set(stacks(worktree)) | set(stacks(PROJECT)))
                base = {s: base_plan(worktree, s, Path(tmp) / "out-base" / s) for s in every}
                head = {s: plan(PROJECT, s, Path(tmp) / "out-head" / s) for s in every}
            finally:
                _git("worktree", "remove", "--force", str(worktree))
        except DiffError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(report(base_ref, base, head), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
