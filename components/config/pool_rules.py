"""Rules on one GPU pool: the GPU catalogue of its cloud, its zones, sizes, capacity types and sharing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from components.catalog import CATALOG, GPU_MODELS
from components.config.base import CAPACITY_ORDER
from components.config.errors import Problem, key_path
from components.config.gpu_pools import GpuPool


def pool_rules(i: int, pool: GpuPool, cloud: str | None, region: str | None) -> Iterator[Problem]:
    base: list[int | str] = ["gpuPools", i]
    model = GPU_MODELS.get(pool.gpu)
    if model is None:
        yield Problem(key_path([*base, "gpu"]), pool.gpu, "unknown GPU; allowed: " + ", ".join(sorted(GPU_MODELS)))
    elif cloud is not None:
        available = CATALOG.gpus_on(cloud)  # type: ignore[arg-type]
        counts = CATALOG.gpu_counts(cloud, pool.gpu)  # type: ignore[arg-type]
        if pool.gpu not in available:
            yield Problem(key_path([*base, "gpu"]), pool.gpu, f"not sold on {cloud}; allowed: " + ", ".join(available))
        elif pool.gpus_per_node not in counts:
            shapes = [CATALOG.shape(cloud, pool.gpu, n) for n in counts]  # type: ignore[arg-type]
            allowed = ", ".join(f"{s.gpus_per_node} ({s.instance_type})" for s in shapes if s)
            yield Problem(
                key_path([*base, "gpusPerNode"]), pool.gpus_per_node, f"allowed for {pool.gpu} on {cloud}: {allowed}"
            )
        else:
            shape = CATALOG.shape(cloud, pool.gpu, pool.gpus_per_node)  # type: ignore[arg-type]
            if shape is not None and shape.spot_only and "on-demand" in pool.capacity:
                yield Problem(
                    key_path([*base, "capacity"]),
                    list(pool.capacity),
                    f"{shape.instance_type} is sold only as spot capacity: use capacity: spot, or 8 GPUs per node",
                )
    for j, zone in enumerate(pool.zones):
        if cloud != "gcp":
            yield Problem(
                key_path([*base, "zones", j]), zone, "only used on gcp (EKS spreads nodes over the VPC's AZs)"
            )
        elif region and not zone.startswith(region + "-"):
            yield Problem(key_path([*base, "zones", j]), zone, f"expected a zone of region {region}, e.g. {region}-a")
    if cloud == "existing" and ("spot" in pool.capacity or "reserved" in pool.capacity):
        yield Problem(
            key_path([*base, "capacity"]),
            list(pool.capacity),
            "existing clusters have no spot or reserved capacity to ask for: use on-demand (the nodes exist already)",
        )
    if pool.min_nodes > pool.max_nodes:
        yield Problem(key_path([*base, "maxNodes"]), pool.max_nodes, f"must be >= minNodes ({pool.min_nodes})")
    yield from capacity_rules([*base, "capacity"], pool.capacity)
    yield from _sharing_rules(base, pool, cloud)


def capacity_rules(
    where: list[int | str], capacity: tuple[str, ...], allowed: tuple[str, ...] = CAPACITY_ORDER
) -> Iterator[Problem]:
    if not capacity:
        yield Problem(key_path(where), [], "at least one of " + ", ".join(allowed))
    elif len(set(capacity)) != len(capacity):
        yield Problem(key_path(where), list(capacity), "list each capacity type once")
    elif list(capacity) != [c for c in allowed if c in capacity]:
        yield Problem(
            key_path(where),
            list(capacity),
            "list capacity types in preference order, "
            + ", ".join(allowed)
            + ": e.g. [spot, on-demand] means spot with on-demand fallback",
        )


RESERVATION_ID = re.compile(r"cr-[0-9a-z]+")
# The pinned Karpenter CRD: at most 30 capacityReservationSelectorTerms, 20 tags in a term.
MAX_RESERVATION_TERMS, MAX_RESERVATION_TAGS = 30, 20


def reservation_rules(
    i: int,
    pool: GpuPool,
    cloud: str | None,
    autoscaler: str | None,
    region: str | None = None,
    raw: object = None,
) -> Iterator[Problem]:
    """`reserved` capacity and the reservations it launches into, as EC2, Karpenter and managed node groups take
    them. `raw` is the pool as written: a `reservations` that did not parse is reported already."""
    base: list[int | str] = ["gpuPools", i]
    r = pool.reservations
    if not pool.capacity or (isinstance(raw, dict) and "reservations" in raw and r is None):
        return  # reported by the capacity rules / the schema
    if cloud in ("gcp", "existing") and "reserved" in pool.capacity:
        if cloud == "gcp":  # existing clusters: reported with spot
            yield Problem(
                key_path([*base, "capacity"]),
                list(pool.capacity),
                "reserved is aws only (EC2 capacity reservations; GKE reservations are not supported yet)",
            )
        return
    if "reserved" in pool.capacity and r is None:
        yield Problem(
            key_path([*base, "capacity"]),
            list(pool.capacity),
            "reserved needs the pool's reservations: gpuPools[].reservations {ids: [cr-...]} (or tags, Karpenter)",
        )
    if r is None:
        return
    where = [*base, "reservations"]
    if cloud in ("gcp", "existing"):
        yield Problem(key_path(where), "{...}", "aws only: EC2 On-Demand Capacity Reservations and Capacity Blocks")
        return
    if "reserved" not in pool.capacity:
        yield Problem(
            key_path(where),
            "{...}",
            "unused: add reserved to the pool's capacity, e.g. capacity: [reserved, on-demand]",
        )
    if not r.ids and not r.tags:
        yield Problem(key_path(where), "{}", "name the reservations: ids [cr-...] or tags")
    for j, rid in enumerate(r.ids):
        if not RESERVATION_ID.fullmatch(rid):
            yield Problem(key_path([*where, "ids", j]), rid, "a capacity reservation id such as cr-0123456789abcdef0")
    terms = len(r.ids) + (1 if r.tags else 0)
    if terms > MAX_RESERVATION_TERMS:
        yield Problem(key_path([*where, "ids"]), f"{len(r.ids)} ids", f"at most {MAX_RESERVATION_TERMS} selector terms")
    if len(r.tags) > MAX_RESERVATION_TAGS:
        yield Problem(key_path([*where, "tags"]), f"{len(r.tags)} tags", f"at most {MAX_RESERVATION_TAGS}")
    for key, value in r.tags.items():
        if not key or not value:
            yield Problem(key_path([*where, "tags", key]), value, "tag keys and values must not be empty")
    node_group = "reserved" in pool.capacity and (
        autoscaler == "cluster-autoscaler" or (pool.capacity[0] == "reserved" and pool.min_nodes > 0)
    )
    zone = r.availability_zone
    if node_group and zone is None:
        yield Problem(
            key_path([*where, "availabilityZone"]),
            None,
            "required: a managed node group launches into these reservations, and a reservation is zonal (the "
            "group must use that AZ's subnet only), e.g. " + (f"{region}a" if region else "us-west-2a"),
        )
    elif zone is not None and region and not re.fullmatch(re.escape(region) + "[a-z]", zone):
        yield Problem(key_path([*where, "availabilityZone"]), zone, f"an AZ of {region}, e.g. {region}a")
    if autoscaler == "cluster-autoscaler":
        # A managed node group's launch template targets exactly one reservation, by id.
        if len(r.ids) != 1 or r.tags:
            yield Problem(
                key_path(where),
                "{...}",
                "under cluster-autoscaler exactly one id and no tags (a node group's launch "
                "template targets one reservation); Karpenter takes several",
            )
        if r.capacity_block:
            yield Problem(
                key_path([*where, "capacityBlock"]),
                True,
                "Capacity Blocks need Karpenter (cluster-autoscaler would scale a node group into a block that is "
                "not active yet or has ended)",
            )
    elif pool.capacity[0] == "reserved" and pool.min_nodes > 0:
        # Karpenter has no minimum: minNodes become a fixed managed node group whose launch template targets one
        # reservation by id, and which cannot wait for a Capacity Block to start.
        if r.capacity_block:
            yield Problem(
                key_path([*base, "minNodes"]),
                pool.min_nodes,
                "must be 0 with Capacity Blocks first: a fixed node group cannot wait for the block to start",
            )
        elif not r.ids:
            yield Problem(
                key_path([*where, "ids"]),
                [],
                "minNodes on reserved capacity need a reservation id: the fixed node group's launch template "
                "targets it (tags select reservations for Karpenter only)",
            )


def _sharing_rules(base: list[int | str], pool: GpuPool, cloud: str | None) -> Iterator[Problem]:
    s, where = pool.sharing, [*base, "sharing"]
    if s.mode == "time-slicing":
        if s.replicas is None or s.replicas < 2:
            yield Problem(key_path([*where, "replicas"]), s.replicas, "time-slicing needs replicas >= 2")
        elif s.replicas > 48:
            yield Problem(key_path([*where, "replicas"]), s.replicas, "at most 48 logical GPUs per GPU")
    elif s.replicas is not None:
        yield Problem(key_path([*where, "replicas"]), s.replicas, "only used with mode: time-slicing")
    if s.mode == "mig":
        model = GPU_MODELS.get(pool.gpu)
        if model is not None and not model.supports_mig:
            allowed = ", ".join(k for k, m in GPU_MODELS.items() if m.supports_mig)
            yield Problem(
                key_path([*where, "mode"]), "mig", f"MIG needs a GPU that supports it: {allowed} (not {pool.gpu})"
            )
        elif model is not None:
            # GKE creates only some of NVIDIA's profiles itself; elsewhere every profile of the exact model.
            allowed = ", ".join(CATALOG.mig_profiles_on(cloud or "existing", pool.gpu))  # type: ignore[arg-type]
            of = f"{pool.gpu} on gcp" if cloud == "gcp" else pool.gpu
            if s.config is not None:
                if s.profile is not None:
                    yield Problem(key_path([*where, "profile"]), s.profile, "set profile or config, not both")
            elif s.profile is None:
                yield Problem(
                    key_path([*where, "profile"]),
                    None,
                    f"mig needs a profile (or a custom layout in config); allowed for {of}: {allowed}",
                )
            elif s.profile not in allowed.split(", "):
                yield Problem(
                    key_path([*where, "profile"]), s.profile, f"not a MIG profile of {of}; allowed: {allowed}"
                )
    else:
        for name in ("profile", "config"):
            if getattr(s, name) is not None:
                yield Problem(key_path([*where, name]), getattr(s, name), "only used with mode: mig")
