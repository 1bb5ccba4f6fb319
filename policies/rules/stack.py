"""Rules over a whole stack (or a directory of manifests): relations between objects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from vocabulary.labels import LABEL_TEAM
from vocabulary.resources import is_gpu_resource

from .findings import Finding, Settings
from .values import describe, get, mapping

# What check_team_quotas reads.
TEAM_QUOTA_KINDS = ("Namespace", "ResourceQuota")


def _limits_gpus(quota: Mapping[str, Any]) -> bool:
    hard = mapping(get(quota, "spec", "hard"))
    # Quota counts extended resources by request only: a limits. key alone enforces nothing (RULES.md). Quota
    # admission runs after the API server copies a lone limit into the request, so limit-only pods are counted.
    return any(str(k).startswith("requests.") and is_gpu_resource(str(k).split(".", 1)[1]) for k in hard)


def check_team_quotas(objects: Sequence[Mapping[str, Any]], settings: Settings) -> Iterator[Finding]:
    del settings
    # Only a string names a namespace (a list or mapping there is malformed: it limits nothing, and is unhashable).
    quotas = {
        namespace
        for o in objects
        if o.get("kind") == "ResourceQuota" and _limits_gpus(o)
        if isinstance(namespace := get(o, "metadata", "namespace"), str)
    }
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue  # read nothing else: other objects' names may be unknown during a preview
        labels = mapping(get(obj, "metadata", "labels"))
        name = get(obj, "metadata", "name")
        if LABEL_TEAM in labels and not (isinstance(name, str) and name in quotas):
            yield Finding(
                "team-namespace-gpu-quota",
                describe(obj),
                f"team namespace {name} has no ResourceQuota limiting GPUs (hard requests.nvidia.com/gpu): "
                "one team can take every GPU",
            )
