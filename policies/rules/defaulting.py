"""A container's resources as the API server defaults them.

When a container has a limit for a resource and no request, the API server copies the limit into the request
(`SetDefaults_Pod` in pkg/apis/core/v1/defaults.go, for `containers` and `initContainers`). It does so on Pods only,
not on pod templates or custom resources, but every such template ends up as a Pod that is defaulted: the rules
judge the pod the cluster will run, so every check on requests also holds for a limit alone. For extended resources
(GPUs) the API server then requires request == limit and a whole number, so a limit alone must be a whole,
non-negative number of devices too.

ResourceQuota admission runs after defaulting: a `requests.nvidia.com/gpu` quota counts a limit-only GPU container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .values import mapping


@dataclass(frozen=True)
class Resources:
    requests: Mapping[str, Any]
    limits: Mapping[str, Any]
    # Requests the API server copies from limits (absent from the manifest).
    defaulted: frozenset[str]


def effective_resources(resources: Mapping[str, Any]) -> Resources:
    """`resources` of a container after the API server's defaulting of requests from limits."""
    requests = {str(k): v for k, v in mapping(resources.get("requests")).items()}
    limits = {str(k): v for k, v in mapping(resources.get("limits")).items()}
    defaulted = frozenset(k for k in limits if k not in requests)
    return Resources({**requests, **{k: limits[k] for k in defaulted}}, limits, defaulted)
