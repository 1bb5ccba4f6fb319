"""Reading Kubernetes objects defensively.

Rules get plain dicts (check.py, tests) or the policy engine's read-only Mapping/Sequence proxies whose numbers
are floats. Everything here works on the abstract types, never `dict`/`list`/`int`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
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
# Kubernetes quantities stay below 2^63 (about 9.2e18): a number of larger magnitude (10**19 or more, however it is
# spelt: `1e999`, thirty digits, `10000000000Ei`) is not one. Bounding the magnitude also keeps every Decimal
# operation on quantities exact within the default 28-digit context (`% 1` of a 29-digit number raises
# DivisionImpossible).
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
    """A Kubernetes quantity as a number: "1", 1, 1.0, "500m", "16Gi", "1e3". None when it is not one, or when its
    magnitude is 10**19 or more (no quantity is)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int):
            return _bounded(Decimal(value))  # not via str(): a huge int has no str()
        if isinstance(value, float):
            return _bounded(Decimal(str(value)))  # .nan and .inf are not quantities
        match = _QUANTITY.match(str(value).strip())
        if match is None:
            return None
        number, exponent, suffix = match.groups()
        base = Decimal(number)
        if exponent and abs(int(exponent[1:])) > MAX_EXPONENT:
            return None
        if _bounded(base) is None:
            return None  # before the multiplication, which would overflow
        return _bounded(base * Decimal(f"1{exponent}") if exponent else base * _SUFFIX[suffix or ""])
    except (ArithmeticError, ValueError):  # decimal's errors are ArithmeticErrors
        return None


def _bounded(amount: Decimal) -> Decimal | None:
    """The amount when a quantity can be that large (finite, magnitude below 10**19), else None."""
    if not amount.is_finite():
        return None
    if amount.is_zero():
        return Decimal(0)  # `0e30` is zero, however large its exponent
    return amount if amount.adjusted() <= MAX_EXPONENT else None


def is_whole(amount: Decimal) -> bool:
    """A whole number (of devices): exact for every amount quantity() returns."""
    return amount == amount.to_integral_value()


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
