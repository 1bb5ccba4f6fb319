"""Team invariants: every GPU resource a team can be scheduled onto is bounded by that team's quota."""

from __future__ import annotations

from collections.abc import Iterator

from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView

QUOTA_NAME = "team-quota"


def check_quota_covers_pools(plan: PlanView) -> Iterator[Violation]:
    """A resource with no quota key is unlimited: one team could take every GPU of that kind."""
    quotas = {
        str(obj["metadata"].get("namespace")): obj.get("spec", {}).get("hard", {})
        for obj in plan.objects("ResourceQuota")
        if obj["metadata"].get("name") == QUOTA_NAME
    }
    for team in plan.config.teams:
        hard = quotas.get(team.name)
        if hard is None:
            yield Violation("team-gpu-quota-covers-pools", f"team {team.name}", "has no team-quota ResourceQuota")
            continue
        for pool in plan.pools:
            if team.name not in pool.teams:
                continue
            for resource in pool.advertised:
                if f"requests.{resource}" not in hard:
                    yield Violation(
                        "team-gpu-quota-covers-pools",
                        f"team {team.name}",
                        f"may use GPU pool {pool.name}, whose nodes offer {resource}, but its quota does not "
                        f"bound requests.{resource}",
                    )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "team-gpu-quota-covers-pools",
        "Every GPU resource a team's pools offer is bounded by that team's ResourceQuota.",
        check_quota_covers_pools,
    ),
)
