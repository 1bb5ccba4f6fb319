"""What every validator shares about an object and its errors: the (group, version, kind) of an
object, JSON paths in messages, formatting of JSON Schema errors and the order of the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from .quantities_names import QUANTITY_PATTERN

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _split_api_version(obj: Mapping[str, Any]) -> tuple[str, str, str] | str:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return "(root): apiVersion and kind must be non-empty strings"
    group, _, version = api_version.rpartition("/")
    return group, version, kind


def _json_path(parts: Iterable[str | int]) -> str:
    """``spec.items[0].labels['app.kubernetes.io/name']``, or ``(root)``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:  # e.g. label keys such as app.kubernetes.io/name
            path += f"[{part!r}]"
    return path or "(root)"


def _format_errors(errors: Iterable[jsonschema.ValidationError], prefix: tuple[str, ...] = ()) -> list[str]:
    out = []
    for error in errors:
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
        if error.validator == "pattern" and error.validator_value == QUANTITY_PATTERN:
            message = f"{error.instance!r} is not a Kubernetes quantity (e.g. 16Gi, 500m, 1)"
        out.append(f"{_json_path(prefix + tuple(error.absolute_path))}: {message}")
    return out


def _sorted(errors: list[str]) -> list[str]:
    """Unique errors ordered by path, then message (so a parent comes before its children)."""
    return sorted(set(errors), key=lambda error: error.partition(": ")[::2])
