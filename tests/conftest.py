"""Shared fixtures: the real program run once per stack file under the recording mocks."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.loading import load_platform_config
from components.config.platform import PlatformConfig
from tools.offline import PROJECT_DIR, PlanResult, read_stack_file, run_stack

STACKS = sorted(p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))
_cache: dict[str, PlanResult] = {}


def plan_of(stack: str) -> PlanResult:
    if stack not in _cache:
        _cache[stack] = run_stack(read_stack_file(stack))
        assert _cache[stack].error is None, _cache[stack].error
    return _cache[stack]


def stack_document(stack: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())


def plan_variant(tmp_path: Path, stack: str, change: Callable[[dict[str, Any]], None]) -> PlanResult:
    """Run the program on a modified copy of a stack file (e.g. another autoscaler)."""
    document = stack_document(stack)
    change(document["config"])
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document))
    return run_stack(read_stack_file(stack, PROJECT_DIR, path), PROJECT_DIR / "__main__.py")


def raw_config(document_config: dict[str, Any]) -> dict[str, str]:
    """Stack-file config as the CLI hands it to the program: strings, objects JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in document_config.items()}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Where test configs reach the API from (a config without a path is an error): an office range for a public
# endpoint, a peered network for a private one. Keys a test sets, even to null or {}, are left alone.
TEST_PUBLIC_CIDRS = ["203.0.113.0/24"]
TEST_API_ACCESS = {"cidrs": ["10.200.0.0/16"]}


def with_api_path(cluster: dict[str, Any], environment: str = "dev") -> dict[str, Any]:
    if cluster.get("cloud") not in ("aws", "gcp"):
        return cluster
    mode = cluster.get("endpointAccess") or ("private" if environment in ("staging", "prod") else "public-and-private")
    if mode == "private":
        return {"apiAccess": TEST_API_ACCESS, **cluster}
    return {"publicAccessCidrs": TEST_PUBLIC_CIDRS, **cluster}


# A MIG pool (7 x 1g.10gb per H100) as several layers' tests use it.
H100_MIG = {
    "name": "mig",
    "gpu": "h100-80gb",
    "gpusPerNode": 8,
    "minNodes": 1,
    "maxNodes": 1,
    "sharing": {"mode": "mig", "profile": "1g.10gb"},
}


def platform_config(cluster: dict[str, Any], pools: Sequence[dict[str, Any]], **stack: Any) -> PlatformConfig:
    """The config of a stack with this cluster (given a path to its API), these GPU pools and other stack keys
    (`teams=[...]`, `environment="prod"`), as the CLI hands it to the program."""
    raw = {
        "ml-platform:cluster": json.dumps(with_api_path(cluster, str(stack.get("environment", "dev")))),
        "ml-platform:gpuPools": json.dumps(list(pools)),
    }
    return load_platform_config(raw | raw_config({f"ml-platform:{k}": v for k, v in stack.items()}))
