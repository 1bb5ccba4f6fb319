"""Reading Kubernetes objects defensively.

Rules get plain dicts (check.py, tests) or the policy engine's read-only Mapping/Sequence proxies whose numbers
are floats. Everything here works on the abstract types, never `dict`/`list`/`int`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# Kubernetes quantities stay below 2^63 (about 9.2e18): anything with a larger exponent is not one (and would make
# Decimal arithmetic raise).
MAX_EXPONENT = 18
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else ()


def get(value: Any, *path: str) -> Any:
    """Nested lookup through mappings; None when any step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity as a number: "1", 1, 1.0, "500m", "16Gi", "1e3". None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None  # .nan and .inf are not quantities
        amount = Decimal(str(value))
        return amount if abs(amount.adjusted()) <= MAX_EXPONENT else None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    try:
        base = Decimal(number)
        if exponent and abs(int(exponent[1:])) > MAX_EXPONENT:
            return None
        return base * Decimal(f"1{exponent}") if exponent else base * _SUFFIX[suffix or ""]
    except (InvalidOperation, ValueError):
        return None


def describe(obj: Mapping[str, Any]) -> str:
    """Kind/name, or Kind/namespace/name for a namespaced object: how findings name an object."""
    meta = mapping(obj.get("metadata"))
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    namespace = meta.get("namespace")
    where = f"{namespace}/{name}" if isinstance(namespace, str) and namespace else str(name)
    return f"{obj.get('kind', '<kind?>')}/{where}"


def show(value: Any) -> str:
    """A value as the manifest would spell it: the policy engine turns 8 into 8.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
