"""A team's GPU quota as its pools offer GPUs (no Pulumi: the config rules and the Teams layer both read it).

The quota is per GPU model (whole GPUs) and per MIG resource (`ResolvedGpuPool.quota_keys`); ResourceQuota can only
count resource names, so `gpu_requests` sums per name.
"""

from __future__ import annotations

from components.config.teams import Team
from components.gpu_pools import ResolvedGpuPool


def team_pools(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> tuple[ResolvedGpuPool, ...]:
    return tuple(p for p in pools if team.name in p.teams)


def offered_keys(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pool in team_pools(team, pools):
        keys |= pool.quota_keys
    return keys


def gpu_quota(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, int]:
    """The team's quota per key; a number stands for the one kind of GPU its pools offer (0: none of any)."""
    offered = offered_keys(team, pools)
    if isinstance(team.gpu_quota, dict):
        return {key: team.gpu_quota.get(key, 0) for key in offered} | dict(team.gpu_quota)
    if team.gpu_quota == 0 or len(offered) != 1:
        return dict.fromkeys(offered, 0)  # a number with several kinds is a config error (components/config/rules)
    return {next(iter(offered)): team.gpu_quota}


def gpu_requests(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, int]:
    """Resource name -> count: what the namespace's ResourceQuota holds for every GPU resource its pools offer."""
    offered = offered_keys(team, pools)
    totals = dict.fromkeys(offered.values(), 0)
    for key, count in gpu_quota(team, pools).items():
        if key in offered:
            totals[offered[key]] += count
    return totals
