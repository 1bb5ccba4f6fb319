"""Kubernetes names and quantities: the resource.Quantity grammar, DNS-1123/1035 names, label keys
and values (the checks the bundled schemas lack), and Go (RE2) patterns translated for Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The grammar of resource.Quantity (k8s.io/apimachinery/pkg/api/resource), as in kubebuilder CRDs.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")  # or label value


def _go_regex_to_python(pattern: str) -> str:
    """Go's RE2 allows "^(?i)..." and ``\\z``; Python wants flags first and spells it ``\\Z``."""
    pattern = re.sub(r"^\^\(\?([ims]+)\)", r"(?\1)^", pattern)
    return re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern)


def _name_problem(name: Any, rule: str) -> str | None:
    if not isinstance(name, str):
        return "must be a string"
    if rule == "path-segment":
        bad = name in (".", "..") or "/" in name or "%" in name
        return "must not be '.' or '..' nor contain '/' or '%'" if bad else None
    pattern, limit = {"label": (_DNS_LABEL, 63), "dns1035": (_DNS_1035, 63)}.get(rule, (_DNS_SUBDOMAIN, 253))
    if len(name) > limit or not pattern.fullmatch(name):
        return (
            f"{name!r} is not a valid DNS-1123 {rule} (lowercase alphanumerics, '-'"
            + (", '.'" if rule == "subdomain" else "")
            + f", at most {limit} characters)"
        )
    return None


def _metadata_errors(obj: Mapping[str, Any], name_rule: str) -> list[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return ["metadata: required (with name)"]
    errors = []
    if "name" in meta:
        if problem := _name_problem(meta["name"], name_rule):
            errors.append(f"metadata.name: {problem}")
    elif isinstance(meta.get("generateName"), str):  # the server appends 5 random characters
        if problem := _name_problem(meta["generateName"] + "x0000", name_rule):
            errors.append(f"metadata.generateName: {problem}")
    else:
        errors.append("metadata.name: required")
    if "namespace" in meta and (problem := _name_problem(meta["namespace"], "label")):
        errors.append(f"metadata.namespace: {problem}")
    for field in ("labels", "annotations"):
        items = meta.get(field)
        for key, value in items.items() if isinstance(items, Mapping) else ():
            prefix, _, name = str(key).rpartition("/")
            if (
                (prefix and _name_problem(prefix, "subdomain"))
                or not name
                or len(name) > 63
                or not _QUALIFIED_NAME.fullmatch(name)
            ):
                errors.append(
                    f"metadata.{field}: key {key!r} is not a valid qualified name "
                    "([DNS-subdomain/]name, name at most 63 characters)"
                )
            if (
                field == "labels"
                and isinstance(value, str)
                and (len(value) > 63 or not _QUALIFIED_NAME.fullmatch(value))
            ):
                errors.append(
                    f"metadata.labels[{key!r}]: value {value!r} is not a valid label "
                    "value (at most 63 alphanumerics, '-', '_', '.')"
                )
    return errors
