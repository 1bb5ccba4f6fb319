"""Offline validation of Kubernetes objects and Helm values for the ml-platform tests.

Built-in kinds use the strict schemas bundled in kubernetes-validate plus the checks they lack
(quantities, DNS-1123 names, labels). Custom resources use the pinned upstream CRDs
(CRD_SCHEMA_DIR), converted to closed JSON Schema as with fieldValidation=Strict; their CEL rules
(x-kubernetes-validations) are not evaluated, CEL evaluation is a later addition. Helm values:
every key path we set must exist in the chart's default values.yaml.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

# API groups served by kube-apiserver itself (union over the schemas bundled for 1.25-1.37).
# Built-in-ness is decided by group, so a kind removed in some version is an error there,
# never silently treated as a custom resource.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "autoscaling",
        "batch",
        "extensions",
        "policy",
        *(
            f"{group}.k8s.io"
            for group in [
                "admission",
                "admissionregistration",
                "apiextensions",
                "apiregistration",
                "authentication",
                "authorization",
                "certificates",
                "coordination",
                "discovery",
                "events",
                "flowcontrol.apiserver",
                "imagepolicy",
                "internal.apiserver",
                "lifecycle",
                "networking",
                "node",
                "rbac.authorization",
                "resource",
                "scheduling",
                "storage",
                "storagemigration",
            ]
        ),
    }
)

# Helm values whose keys are free-form or Kubernetes-typed: the chart's defaults show only an
# example of their keys, so only the key itself is checked, not what is below it.
FREE_FORM_KEYS = frozenset(
    [
        "nodeSelector",
        "annotations",
        "labels",
        "podAnnotations",
        "podLabels",
        "additionalLabels",
        "additionalAnnotations",
        "commonLabels",
        "extraArgs",
        "extraEnv",
        "env",
        "resources",
        "affinity",
        "tolerations",
        "securityContext",
        "podSecurityContext",
        "containerSecurityContext",
    ]
)

# The grammar of resource.Quantity (k8s.io/apimachinery/pkg/api/resource), as in kubebuilder CRDs.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_SCHEMA_ROOT = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")  # or label value
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")

# CRD schemas leave metadata open; the API server validates it as ObjectMeta.
_OBJECT_META_TYPES = {
    "string": ["name", "generateName", "namespace", "uid", "resourceVersion", "selfLink"],
    "array": ["finalizers", "ownerReferences", "managedFields"],
    "object": ["labels", "annotations"],
    "integer": ["generation", "deletionGracePeriodSeconds"],
    "string|null": ["creationTimestamp", "deletionTimestamp"],
}
_CR_METADATA_VALIDATOR = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": False,
        # additionalProperties applies only to the object-typed fields: labels and annotations.
        "properties": {
            field: {"type": type_.split("|"), "additionalProperties": {"type": "string"}}
            for type_, fields in _OBJECT_META_TYPES.items()
            for field in fields
        },
    }
)


class SchemaUnavailable(Exception):  # noqa: N818 - the name is the agreed API
    """A custom resource cannot be validated because no CRD directory is configured."""


def crd_schema_dir() -> pathlib.Path | None:
    """The directory of pinned upstream CRDs from ``CRD_SCHEMA_DIR``, if it is a directory."""
    value = os.environ.get("CRD_SCHEMA_DIR")
    return pathlib.Path(value) if value and pathlib.Path(value).is_dir() else None


def _split_api_version(obj: Mapping[str, Any]) -> tuple[str, str, str] | str:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return "(root): apiVersion and kind must be non-empty strings"
    group, _, version = api_version.rpartition("/")
    return group, version, kind


def _format_errors(errors: Iterable[jsonschema.ValidationError], prefix: tuple[str, ...] = ()) -> list[str]:
    out = []
    for error in errors:
        path = ""
        for part in prefix + tuple(error.absolute_path):
            if isinstance(part, int):
                path += f"[{part}]"
            elif _PLAIN_KEY.fullmatch(part):
                path += f".{part}" if path else part
            else:  # e.g. label keys such as app.kubernetes.io/name
                path += f"[{part!r}]"
        message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
        if error.validator == "pattern" and error.validator_value == QUANTITY_PATTERN:
            message = f"{error.instance!r} is not a Kubernetes quantity (e.g. 16Gi, 500m, 1)"
        out.append(f"{path or '(root)'}: {message}")
    return out


def _sorted(errors: list[str]) -> list[str]:
    """Unique errors ordered by path, then message (so a parent comes before its children)."""
    return sorted(set(errors), key=lambda error: error.partition(": ")[::2])


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


# ---------------------------------------------------------------- built-in kinds


def _schema_dir(k8s_version: str) -> pathlib.Path:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", k8s_version)
    path = _SCHEMA_ROOT / (f"v{match[1]}.{match[2]}.0-local-strict" if match else "-")
    if not path.is_dir():
        known = sorted(p.name for p in _SCHEMA_ROOT.glob("v*-local-strict"))
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {k8s_version!r}; it has {', '.join(known)}"
        )
    return path


@functools.cache
def _builtin_registry(schema_dir: pathlib.Path) -> Registry[Any]:
    definitions = json.loads((schema_dir / "_definitions.json").read_text())
    # The bundled Quantity accepts any string; use the API server's grammar (the pattern
    # applies to strings only, so numbers such as 1 still pass).
    definitions["$defs"][_QUANTITY_DEF] = {"type": ["string", "number", "null"], "pattern": QUANTITY_PATTERN}
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _builtin_validator(schema_dir: pathlib.Path, group: str, version: str, kind: str) -> Any:
    group_part = f"{group.split('.')[0]}-" if group else ""
    path = schema_dir / f"{kind.lower()}-{group_part}{version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # File names keep only the first label of the group; make sure it is really this group.
    gvk = {"group": group, "version": version, "kind": kind}
    if gvk not in schema.get("x-kubernetes-group-version-kind", []):
        return None
    validator_class = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
    return validator_class(schema, registry=_builtin_registry(schema_dir))


def validate_builtin(obj: Mapping[str, Any], k8s_version: str) -> list[str]:
    """All strict-schema, quantity and name errors of a built-in object for e.g. ``"1.35"``."""
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    group, version, kind = split
    validator = _builtin_validator(_schema_dir(k8s_version), group, version, kind)
    if validator is None:
        return [
            (
                f"(root): Kubernetes {k8s_version} has no built-in kind {kind} in "
                f"{obj['apiVersion']} (unknown kind, or API version removed)"
            )
        ]
    # RBAC names are path segments (e.g. system:aggregate-to-edit), not DNS names.
    rule = (
        "path-segment"
        if group == "rbac.authorization.k8s.io"
        else {("", "Namespace"): "label", ("", "Service"): "dns1035"}.get((group, kind), "subdomain")
    )
    return _sorted(_format_errors(validator.iter_errors(obj)) + _metadata_errors(obj, rule))


# ---------------------------------------------------------------- custom resources


def openapi_to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a CRD's OpenAPI v3 schema (with Kubernetes extensions) to strict JSON Schema."""
    out = {k: v for k, v in schema.items() if k != "description"}
    for key in ("properties", "patternProperties"):
        if key in out:
            out[key] = {k: openapi_to_json_schema(v) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), Mapping):
            out[key] = openapi_to_json_schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [openapi_to_json_schema(s) for s in out[key]]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)  # the [integer, string] pair; a single type gives clearer errors
        out["type"] = ["integer", "string"]
    if out.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.get("x-kubernetes-embedded-resource"):
        out["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **out.get("properties", {}),
        }
        out["required"] = sorted({*out.get("required", []), "apiVersion", "kind"})
    if "required" in out:  # the API server applies defaults before it validates
        props = out.get("properties", {})
        out["required"] = [r for r in out["required"] if "default" not in props.get(r, {})]
    if isinstance(out.get("pattern"), str):  # Go's RE2 allows "^(?i)..."; Python wants flags first
        out["pattern"] = re.sub(r"^\^\(\?([ims]+)\)", r"(?\1)^", out["pattern"])
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False  # unknown fields are rejected (fieldValidation=Strict)
    return out


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(instance, list):
        return
    item_props = schema.get("items", {}).get("properties", {})
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, Mapping):
            continue
        key = json.dumps([item.get(k, item_props.get(k, {}).get("default")) for k in keys])
        if key in seen:
            yield jsonschema.ValidationError(
                f"items [{seen[key]}] and [{index}] have the same list-map key "
                f"{dict(zip(keys, json.loads(key), strict=True))}"
            )
        seen.setdefault(key, index)


_CRDValidator = jsonschema.validators.extend(Draft202012Validator, {"x-kubernetes-list-map-keys": _list_map_keys})


@functools.cache
def _load_crds(path: pathlib.Path) -> tuple[dict[str, Any], ...]:
    with path.open("rb") as stream:
        docs = yaml.load_all(stream, Loader=yaml.CSafeLoader)
        return tuple(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")


def _mentions(text: str, key: str, value: str) -> bool:
    # Cheap pre-filter so only candidate files (not all ~10 MB of CRDs) are parsed as YAML.
    pattern = rf"^[\s-]*[\"']?{key}[\"']?\s*:\s*[\"']?{re.escape(value)}[\"']?\s*,?\s*$"
    return re.search(pattern, text, re.MULTILINE) is not None


@functools.cache
def _crd_validator(crd_dir: pathlib.Path, group: str, version: str, kind: str) -> tuple[Any, str | None]:
    matches = [
        (path, crd)
        for path in sorted(crd_dir.rglob("*.yaml"))
        if _mentions(text := path.read_text(), "group", group) and _mentions(text, "kind", kind)
        for crd in _load_crds(path)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    ]
    if not matches:
        return None, f"(root): no CRD for kind {kind} in group {group!r} under {crd_dir}"
    schemas = {}
    for path, crd in matches:
        versions = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
        if version not in versions:
            return None, (
                f"apiVersion: {group}/{version} is not served by the {kind} CRD in "
                f"{path}; served: {', '.join(sorted(versions))}"
            )
        schemas[path] = versions[version].get("schema", {}).get("openAPIV3Schema", {})
    # The same CRD may be pinned twice (prometheus-operator and kube-prometheus-stack).
    if any(s != next(iter(schemas.values())) for s in schemas.values()):
        return None, (
            f"(root): {len(schemas)} different {kind} CRDs under {crd_dir} "
            f"({', '.join(map(str, schemas))}); point the CRD directory at one"
        )
    return _CRDValidator(openapi_to_json_schema(next(iter(schemas.values())))), None


def validate_custom_resource(obj: Mapping[str, Any], crd_dir: pathlib.Path | None = None) -> list[str]:
    """All errors of a custom resource against its pinned CRD (OpenAPI schema, not CEL)."""
    crd_dir = crd_dir or crd_schema_dir()
    if crd_dir is None or not crd_dir.is_dir():
        raise SchemaUnavailable(
            f"no CRD directory ({crd_dir}): set CRD_SCHEMA_DIR to the directory of pinned "
            "upstream CRDs, e.g. CRD_SCHEMA_DIR=../shared/reference/crds"
        )
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    group, version, kind = split
    validator, problem = _crd_validator(crd_dir.resolve(), group, version, kind)
    if validator is None:
        return [str(problem)]
    errors = _format_errors(validator.iter_errors(obj))
    errors += _format_errors(_CR_METADATA_VALIDATOR.iter_errors(obj.get("metadata", {})), ("metadata",))
    return _sorted(errors + _metadata_errors(obj, "subdomain"))


def validate_object(obj: Mapping[str, Any], k8s_version: str, crd_dir: pathlib.Path | None = None) -> list[str]:
    """Validate a built-in object (decided by API group) or else a custom resource."""
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    if split[0] in BUILTIN_GROUPS:
        return validate_builtin(obj, k8s_version)
    return validate_custom_resource(obj, crd_dir)


# ---------------------------------------------------------------- Helm values


def chart_values_file(chart: str, version: str, reference_dir: pathlib.Path) -> pathlib.Path:
    """``reference_dir/chart-values/<chart>-<version>/values.yaml``; it must exist."""
    path = reference_dir / "chart-values" / f"{chart}-{version}" / "values.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"no default values for chart {chart} {version}: {path} is "
            "missing (is the chart pinned in the reference VERSIONS.md?)"
        )
    return path


@functools.cache
def _chart_defaults(path: pathlib.Path) -> Any:
    with path.open("rb") as stream:
        return yaml.load(stream, Loader=yaml.CSafeLoader)


def unknown_helm_value_paths(
    values: Mapping[str, Any], chart_values_file: pathlib.Path, *, free_form_keys: Collection[str] = FREE_FORM_KEYS
) -> list[str]:
    """Dotted key paths in ``values`` that the chart's default values.yaml does not have.

    A path is accepted below a key whose default is ``{}``, null or not a map (a list or scalar),
    or whose name is in ``free_form_keys``. An empty values.yaml means the chart takes no values.
    """
    unknown: list[str] = []

    def walk(ours: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str) -> None:
        for key, value in ours.items():
            path = f"{prefix}{key}"
            if key not in defaults:
                unknown.append(path)
            elif (
                isinstance(defaults[key], Mapping)
                and defaults[key]
                and key not in free_form_keys
                and isinstance(value, Mapping)
            ):
                walk(value, defaults[key], f"{path}.")

    defaults = _chart_defaults(chart_values_file.resolve())
    walk(values, defaults if isinstance(defaults, Mapping) else {}, "")
    return unknown
