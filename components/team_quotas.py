"""A team's GPU quota as its pools offer GPUs (no Pulumi: the config rules and the Teams layer both read it).

The quota is per GPU model (whole GPUs) and per MIG resource (`ResolvedGpuPool.quota_keys`); ResourceQuota can only
count resource names, so `gpu_requests` sums per name.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.teams import Team
from components.gpu_pools import ResolvedGpuPool


def team_pools(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> tuple[ResolvedGpuPool, ...]:
    return tuple(p for p in pools if team.name in p.teams)


def offered_keys(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pool in team_pools(team, pools):
        keys |= pool.quota_keys
    return keys


def per_key(amount: int | dict[str, int], offered: dict[str, str]) -> dict[str, int]:
    """A quota-shaped amount per key; a number stands for the one kind of GPU the pools offer (0: none of any)."""
    if isinstance(amount, dict):
        return {key: amount.get(key, 0) for key in offered} | dict(amount)
    if amount == 0 or len(offered) != 1:
        return dict.fromkeys(offered, 0)  # a number with several kinds is a config error (components/config/rules)
    return {next(iter(offered)): amount}


def gpu_quota(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, int]:
    """The team's guaranteed GPUs per key (Kueue's nominal quota)."""
    return per_key(team.gpu_quota, offered_keys(team, pools))


def gpu_borrowing(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, int]:
    """What the team may borrow per key beyond its quota (Kueue's borrowing limit); by default its quota."""
    limit = team.gpu_quota if team.gpu_borrowing_limit is None else team.gpu_borrowing_limit
    return per_key(limit, offered_keys(team, pools))


def gpu_requests(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, int]:
    """Resource name -> count: what the namespace's ResourceQuota allows for every GPU resource the cluster's pools
    advertise: for those the team's pools offer, the most Kueue can ever admit for the team (quota + borrowing
    limit); 0 for the others (a bare pod must not take another team's MIG slices)."""
    offered = offered_keys(team, pools)
    totals = dict.fromkeys(sorted({resource for pool in pools for resource in pool.advertised}), 0)
    for amounts in (gpu_quota(team, pools), gpu_borrowing(team, pools)):
        for key, count in amounts.items():
            if key in offered:
                totals[offered[key]] += count
    return totals


@dataclass(frozen=True)
class CapacityRow:
    """One GPU quota key across the stack: what the teams are promised and what the pools can ever provide."""

    key: str
    resource: str
    promised: int
    available: int

    @property
    def overcommitted(self) -> bool:
        return self.promised > self.available


def capacity_rows(teams: list[Team], pools: tuple[ResolvedGpuPool, ...]) -> list[CapacityRow]:
    """Per quota key: the sum of the teams' quotas, next to the pools' units of it with every capacity type at
    maxNodes."""
    available: dict[str, int] = {}
    resources: dict[str, str] = {}
    for pool in pools:
        for key, resource in pool.quota_keys.items():
            available[key] = available.get(key, 0) + pool.advertised[resource] * pool.ceiling_nodes
            resources[key] = resource
    promised = dict.fromkeys(available, 0)
    for team in teams:
        for key, count in gpu_quota(team, pools).items():
            if key in promised:
                promised[key] += count
    return [CapacityRow(key, resources[key], promised[key], available[key]) for key in sorted(available)]
