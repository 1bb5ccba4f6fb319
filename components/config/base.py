"""What every section model shares: the base class, the value types, the patterns and what they mean."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

# The stack-key namespace: `ml-platform:cluster`, `ml-platform:gpuPools`, ...
NAMESPACE = "ml-platform"

Environment = Literal["dev", "staging", "prod"]
Cloud = Literal["aws", "gcp", "existing"]
# In preference order: capacity already paid for (EC2 capacity reservations), then spot, then on-demand.
CapacityType = Literal["reserved", "spot", "on-demand"]
CAPACITY_ORDER: tuple[CapacityType, ...] = ("reserved", "spot", "on-demand")
CpuCapacityType = Literal["spot", "on-demand"]
Workload = Literal["training", "inference", "dev"]
SharingMode = Literal["none", "time-slicing", "mig"]
Autoscaler = Literal["karpenter", "cluster-autoscaler", "none"]
EndpointAccess = Literal["public-and-private", "private"]
Enforcement = Literal["advisory", "mandatory"]

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes object name (RFC 1123 subdomain): StorageClass and IngressClass names.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION = r"^([0-9]+(s|m|h))+$"
EXPIRY = r"^(([0-9]+(s|m|h))+|Never)$"
AMI_VERSION = r"^(latest|v[0-9][0-9A-Za-z.\-]*)$"
CLUSTER_AUTOSCALER_TAG = r"^v1\.[0-9]+\.[0-9]+$"
# A non-negative Kubernetes quantity (resource.Quantity), e.g. 64, 500m, 256Gi, 1.5T.
QUANTITY = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)([numkMGTPE]|[KMGTPE]i|[eE][0-9]+)?$"
PROMETHEUS_DURATION = r"^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"

# What each pattern means, for error messages.
PATTERN_HELP: dict[str, str] = {
    DNS_LABEL: "expected a DNS label: lowercase letters, digits and '-', starting with a letter",
    DURATION: "expected a duration in s, m or h, such as 90s, 5m or 1h30m",
    EXPIRY: "expected a duration in s, m or h (720h for 30 days) or Never",
    AMI_VERSION: "expected latest or an AMI release version such as v20260714",
    PROMETHEUS_DURATION: "expected a Prometheus duration such as 15d, 1d12h or 4w",
    CLUSTER_AUTOSCALER_TAG: "expected a cluster-autoscaler image tag such as v1.35.0",
    QUANTITY: "expected a Kubernetes quantity such as 64, 500m or 256Gi",
}


class ConfigModel(BaseModel):
    """Unknown keys are errors; keys are camelCase (snake_case spellings are unknown keys)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_default=True,
    )


_QUANTITY_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
    "E": Decimal("1e18"), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip


# Kubernetes keeps quantities in 64 bits: anything this large is a typo.
QUANTITY_LIMIT = Decimal(2**63)
INF = float("inf")


def quantity_value(text: str) -> Decimal:
    """The amount of a quantity that matched QUANTITY (`500m` -> 0.5, `1Gi` -> 1073741824, `1e3` -> 1000, `1Ei`
    -> 2**60); absurd exponents are capped above QUANTITY_LIMIT instead of computed."""
    number = re.match(r"[0-9.]+", text)
    assert number is not None  # QUANTITY matched
    suffix = text[number.end() :]
    if suffix[:1] in ("e", "E") and suffix[1:].isdigit():
        exponent = min(int(suffix[1:]), 40)
        return Decimal(number.group()) * Decimal(10) ** exponent
    return Decimal(number.group()) * _QUANTITY_SUFFIX[suffix]


def number_as_quantity(value: Any) -> Any:
    """A YAML number where a quantity goes (`cpu: 64`, `size: 1e12` unquoted): the quantity Kubernetes reads."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (INF, -INF):
        return value
    return str(int(value)) if float(value).is_integer() else format(value, "f").rstrip("0")


# /dev/shm sizes the platform sets: at least what a data loader or NCCL needs, at most what a node has.
SHM_MIN, SHM_MAX = "1Gi", "1Ti"


def _shm_bounds(value: str) -> str:
    """A /dev/shm size the pattern accepted, within SHM_MIN..SHM_MAX."""
    amount = quantity_value(value)
    if amount < quantity_value(SHM_MIN):
        raise ValueError(f"at least {SHM_MIN} (a memory size in bytes: 16Gi, not 16)")
    if amount > quantity_value(SHM_MAX):
        raise ValueError(f"at most {SHM_MAX}: it is the pod's memory")
    return value


# A memory /dev/shm size (the trainer runtime, KServe's huggingfaceserver, a team's RayCluster): a YAML number is
# read as the quantity Kubernetes would read, then the pattern, then the bounds.
ShmSize = Annotated[
    str, BeforeValidator(number_as_quantity), StringConstraints(pattern=QUANTITY), AfterValidator(_shm_bounds)
]


def byte_quantity(value: Decimal) -> str:
    """Bytes as the largest binary unit that divides them (`1206885810176` -> `1124Gi`)."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _QUANTITY_SUFFIX[suffix]
        if value >= unit and value % unit == 0:
            return f"{int(value / unit)}{suffix}"
    return str(int(value.to_integral_value(rounding="ROUND_CEILING")))


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as 1h30m or 15d (both spellings the patterns above admit)."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))
