"""`make bench`: how the offline plan of the prod stack grows with the number of teams.

Plans Pulumi.prod.yaml as it is, then with 10, 100 and 500 generated teams instead of its own (each in a fresh
process, as `make plan` runs), and prints the plan time (program, invariants and manifests: the figure `make plan`
prints), the time per team above the stack's own, and whether the cost per team stays flat (linear growth). A
benchmark, not a test: it never fails on a figure. Target: at most 10 ms of plan time per team.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vocabulary.priorities import RESTRICTED_PRIORITY

PROJECT_DIR = Path(__file__).resolve().parents[1]
TARGET_MS_PER_TEAM = 10.0
# Within this factor the cost per team counts as flat.
LINEAR_TOLERANCE = 1.5


def generated_teams(count: int) -> list[dict[str, Any]]:
    """Teams spread over the prod pools, no GPU quota (prod refuses promising more than exists), each with a
    group, so every per-team object is planned."""
    teams = []
    for i in range(count):
        serving = i % 2 == 1
        team: dict[str, Any] = {
            "name": f"team-{i:04d}",
            "pools": ["serve-mig", "serve-a100"] if serving else ["train-h100"],
            "groups": [f"ml-team-{i:04d}"],
        }
        if serving:  # the serving ingress policy too
            team["priority"] = RESTRICTED_PRIORITY
        teams.append(team)
    return teams


def plan_seconds(stack_file: Path, out: Path) -> tuple[float, int]:
    """(plan time as `make plan` prints it, resources planned)."""
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_DIR / "tools" / "plan.py"),
            "prod",
            "--stack-file",
            str(stack_file),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the plan of {stack_file.name} failed:\n{done.stdout}{done.stderr}")
    found = re.search(r"\((\d+\.\d+)s\): (\d+) resources", done.stdout)
    if found is None:
        raise SystemExit(f"no timing in the plan summary:\n{done.stdout}")
    return float(found.group(1)), int(found.group(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, nargs="+", default=[10, 100, 500], help="team counts to time")
    args = parser.parse_args(argv)
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())
    own = len(document["config"].get("ml-platform:teams", []))
    with tempfile.TemporaryDirectory(prefix="ml-platform-bench-") as tmp:
        base_file = Path(tmp) / "Pulumi.prod.yaml"
        base_file.write_text(yaml.safe_dump(document))
        base, base_resources = plan_seconds(base_file, Path(tmp) / "out-base")
        print(f"prod as it is ({own} teams): {base:.1f}s, {base_resources} resources")
        print(f"{'teams':>6} {'plan s':>8} {'resources':>10} {'ms/team':>8}")
        per_team: dict[int, float] = {}
        for count in args.teams:
            document["config"]["ml-platform:teams"] = generated_teams(count)
            stack_file = Path(tmp) / f"Pulumi.prod-{count}.yaml"
            stack_file.write_text(yaml.safe_dump(document))
            seconds, resources = plan_seconds(stack_file, Path(tmp) / f"out-{count}")
            per_team[count] = (seconds - base) * 1000 / max(count - own, 1)
            print(f"{count:>6} {seconds:>8.1f} {resources:>10} {per_team[count]:>8.1f}")
    counts = sorted(per_team)
    small, large = per_team[counts[0]], per_team[counts[-1]]
    # A small count's per-team figure is mostly noise on a ~2 s base: judge growth between the two largest.
    judged = per_team[counts[-2]] if len(counts) > 1 else small
    linear = large <= max(judged, 0.5) * LINEAR_TOLERANCE
    print(
        f"cost per team at {counts[-1]} teams: {large:.1f} ms (target <= {TARGET_MS_PER_TEAM:.0f} ms): "
        + ("within target" if large <= TARGET_MS_PER_TEAM else "OVER target")
    )
    if len(counts) < 2:
        print("growth: time at least two team counts to judge it")
    else:
        print("growth: " + ("linear (cost per team flat)" if linear else "faster than linear (cost per team grows)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
