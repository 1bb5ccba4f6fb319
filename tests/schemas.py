"""Offline validation of Kubernetes objects and Helm values for the ml-platform tests.

Built-in kinds use the strict schemas bundled in kubernetes-validate plus the checks they lack
(quantities, DNS-1123 names, labels). Custom resources use the pinned upstream CRDs
(CRD_SCHEMA_DIR), converted to closed JSON Schema as with fieldValidation=Strict, and then their
CEL rules (x-kubernetes-validations, except transition rules on oldSelf) with the cel-expr-python
engine plus the Kubernetes CEL library functions it lacks. Helm values: every key path we set must
exist in the chart's default values.yaml.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import pathlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings
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


def _go_regex_to_python(pattern: str) -> str:
    """Go's RE2 allows "^(?i)..." and ``\\z``; Python wants flags first and spells it ``\\Z``."""
    pattern = re.sub(r"^\^\(\?([ims]+)\)", r"(?\1)^", pattern)
    return re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern)


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
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _go_regex_to_python(out["pattern"])
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
def _crd_schema(crd_dir: pathlib.Path, group: str, version: str, kind: str) -> tuple[dict[str, Any] | None, str]:
    """The served version's openAPIV3Schema of the one pinned CRD for the kind, or a problem."""
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
    return next(iter(schemas.values())), ""


@functools.cache
def _crd_validator(crd_dir: pathlib.Path, group: str, version: str, kind: str) -> tuple[Any, str | None]:
    schema, problem = _crd_schema(crd_dir, group, version, kind)
    if schema is None:
        return None, problem
    return _CRDValidator(openapi_to_json_schema(schema)), None


@functools.cache
def _crd_cel_rules(
    crd_dir: pathlib.Path, group: str, version: str, kind: str
) -> tuple[dict[str, Any], _CelNode] | None:
    schema, _ = _crd_schema(crd_dir, group, version, kind)
    node = None if schema is None else _cel_node(schema)
    return None if schema is None or node is None else (schema, node)


def validate_custom_resource(obj: Mapping[str, Any], crd_dir: pathlib.Path | None = None) -> list[str]:
    """All errors of a custom resource against its pinned CRD: OpenAPI schema, then CEL rules.

    CEL rules (``x-kubernetes-validations`` without ``oldSelf``) run as the API server runs them:
    on the object after structural defaulting, and only when the schema errors do not block them
    (a wrong type, enum, required field, maximum length/items/properties, unknown field; errors
    such as a pattern or minimum do not block). A blocked object gets no CEL errors, and no note
    saying so: fix the schema errors first. A failed rule reads ``<path>: <message> (CEL)``; a rule
    the engine cannot compile is an error too, never a silent pass (see unsupported_cel_rules).
    """
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
    schema_errors = list(validator.iter_errors(obj))
    errors = _format_errors(schema_errors)
    errors += _format_errors(_CR_METADATA_VALIDATOR.iter_errors(obj.get("metadata", {})), ("metadata",))
    rules = _crd_cel_rules(crd_dir.resolve(), group, version, kind)
    if rules is not None and not any(_blocks_cel(error) for error in schema_errors):
        errors += _cel_errors(obj, *rules)
    return _sorted(errors + _metadata_errors(obj, "subdomain"))


def validate_object(obj: Mapping[str, Any], k8s_version: str, crd_dir: pathlib.Path | None = None) -> list[str]:
    """Validate a built-in object (decided by API group) or else a custom resource."""
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    if split[0] in BUILTIN_GROUPS:
        return validate_builtin(obj, k8s_version)
    return validate_custom_resource(obj, crd_dir)


# ---------------------------------------------------------------- CEL (x-kubernetes-validations)
#
# The engine is cel-expr-python (Google's C++ CEL): it type-checks at compile time, so a rule
# calling a function it does not know fails to compile instead of passing, and its strings
# extension has the cel-go ext.Strings functions Kubernetes enables (split, lowerAscii, trim, ...).
# What it lacks of the Kubernetes CEL library is added here in Python: the regex library (find,
# findAll) and the lists library (isSorted, sum, min, max, indexOf, lastIndexOf). Of those, the
# pinned CRDs use only find; quantity, url, ip, cidr, semver, format, authz and the sets extension
# are not implemented, so a rule using them is reported by unsupported_cel_rules.


class CelError(Exception):
    """A CEL expression that cannot be compiled, or whose evaluation ended in an error."""


# CEL keywords that Kubernetes escapes as __keyword__ in property names (model/escaping.go).
_CEL_RESERVED = frozenset(
    {
        *("true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function"),
        *("if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"),
    }
)
_TRANSITION_RULE = re.compile(r"\boldSelf\b")
# What the API server reports as "Required", "TypeInvalid", "NotSupported", "TooLong" or "TooMany"
# (and unknown fields, which fieldValidation=Strict rejects before validation) blocks all CEL rules.
_NON_BLOCKING_VALIDATORS = frozenset(
    {
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "minItems",
        "minProperties",
        "uniqueItems",
        "x-kubernetes-list-map-keys",
    }
)


@functools.cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_go_regex_to_python(pattern))


def _find(text: str, pattern: str) -> str:
    match = _python_regex(pattern).search(text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    matches: list[str] = []
    for match in _python_regex(pattern).finditer(text):
        if len(matches) == limit:
            break
        matches.append(match.group(0))
    return matches


def _cel_equal(left: Any, right: Any) -> bool:
    # Python has True == 1; CEL does not (ints and doubles do compare by value).
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)


def _index_of(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if _cel_equal(item, value)), -1)


def _last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in reversed(range(len(items))) if _cel_equal(items[i], value)), -1)


def _comparable(items: list[Any], function: str) -> list[Any]:
    if any(isinstance(item, bool | list | dict) or item is None for item in items):
        raise TypeError(f"{function}() needs a list of numbers, strings, durations or timestamps")
    return items


def _is_sorted(items: list[Any]) -> bool:
    items = _comparable(items, "isSorted")
    return all(not later < earlier for earlier, later in itertools.pairwise(items))


def _sum(items: list[Any]) -> Any:
    if any(isinstance(item, bool | str | bytes) for item in _comparable(items, "sum")):
        raise TypeError("sum() needs a list of numbers or durations")
    total = items[0] if items else 0
    for item in items[1:]:
        total = total + item
    return total


def _extreme(function: str) -> Any:
    def extreme(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{function}() called on an empty list")
        return (min if function == "min" else max)(_comparable(items, function))

    return extreme


def _member(name: str, overload: str, result: Any, parameters: list[Any], impl: Any) -> Any:
    return cel.FunctionDecl(
        name, [cel.Overload(overload, return_type=result, parameters=parameters, is_member=True, impl=impl)]
    )


@functools.cache
def _kubernetes_library() -> Any:
    """The Kubernetes CEL library functions the engine lacks, as a cel-expr-python extension."""
    string, list_ = cel.Type.STRING, cel.Type.List(cel.Type.DYN)
    return cel.CelExtension(
        "kubernetes",
        [
            _member("find", "k8s_string_find_string", string, [string, string], _find),
            cel.FunctionDecl(
                "findAll",
                [
                    cel.Overload(
                        "k8s_string_find_all_string",
                        return_type=cel.Type.List(string),
                        parameters=[string, string],
                        is_member=True,
                        impl=_find_all,
                    ),
                    cel.Overload(
                        "k8s_string_find_all_string_int",
                        return_type=cel.Type.List(string),
                        parameters=[string, string, cel.Type.INT],
                        is_member=True,
                        impl=_find_all,
                    ),
                ],
            ),
            _member("isSorted", "k8s_list_is_sorted", cel.Type.BOOL, [list_], _is_sorted),
            _member("sum", "k8s_list_sum", cel.Type.DYN, [list_], _sum),
            _member("min", "k8s_list_min", cel.Type.DYN, [list_], _extreme("min")),
            _member("max", "k8s_list_max", cel.Type.DYN, [list_], _extreme("max")),
            _member("indexOf", "k8s_list_index_of", cel.Type.INT, [list_, cel.Type.DYN], _index_of),
            _member("lastIndexOf", "k8s_list_last_index_of", cel.Type.INT, [list_, cel.Type.DYN], _last_index_of),
        ],
    )


@functools.cache
def _cel_env(variables: tuple[str, ...]) -> Any:
    return cel.NewEnv(
        variables=dict.fromkeys(variables, cel.Type.DYN),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(), _kubernetes_library()],
    )


@functools.cache
def _cel_program(expression: str, variables: tuple[str, ...]) -> Any:
    """The compiled expression, cached by its text: a rule shared by many CRDs compiles once."""
    try:
        return _cel_env(variables).compile(expression)
    except Exception as error:  # the engine raises RuntimeError("INVALID_ARGUMENT: ERROR: ...")
        raise CelError(" ".join(str(error).split())) from None


def _cel_result(program: Any, activation: Any) -> Any:
    """The result of a compiled expression as a cel ``Value``; CelError if evaluation failed."""
    try:
        result = program.eval(activation)
    except Exception as error:  # e.g. a value the engine cannot convert
        raise CelError(str(error)) from None
    if result.type() == cel.Type.ERROR:
        raise CelError(str(result.value()))
    return result


def evaluate_cel(expression: str, bindings: Mapping[str, Any]) -> Any:
    """Evaluate a CEL expression with the Kubernetes library, e.g. a ValidatingAdmissionPolicy
    validation with ``{"object": obj, "variables": {...}}`` bound (variables are evaluated by the
    caller, in order). Each binding is a dynamically typed variable; the result is plain Python
    (bool, int, float, str, list, dict, ...). Raises CelError on compile or evaluation errors.
    Programs are cached by (expression, variable names)."""
    program = _cel_program(expression, tuple(sorted(bindings)))
    return _cel_result(program, _cel_env(tuple(sorted(bindings))).Activation(dict(bindings))).plain_value()


@dataclasses.dataclass(frozen=True)
class _CelRule:
    rule: str
    message: str
    field_path: tuple[str | int, ...]
    program: Any  # None when the rule (or its messageExpression) cannot be compiled
    message_program: Any
    problem: str


@dataclasses.dataclass(frozen=True)
class _CelNode:
    """The part of a CRD schema that leads to CEL rules (subtrees without rules are left out)."""

    rules: tuple[_CelRule, ...]
    properties: Mapping[str, _CelNode]
    additional_properties: _CelNode | None
    items: _CelNode | None


def _parse_field_path(field_path: str) -> tuple[str | int, ...]:
    # fieldPath is a relative JSON path such as ".spec.ports" or ".labels['app.kubernetes.io/name']".
    return tuple(
        int(index) if index else (name or quoted.replace("\\'", "'"))
        for name, quoted, index in re.findall(r"\.([^.\[]+)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]", field_path)
    )


def _compile_rule(validation: Mapping[str, Any]) -> _CelRule:
    rule = str(validation["rule"])
    program = message_program = None
    problem = ""
    try:
        program = _cel_program(rule, ("self",))
        if program.return_type() not in (cel.Type.BOOL, cel.Type.DYN):
            problem, program = f"the rule returns {program.return_type().name()}, not bool", None
        if validation.get("messageExpression"):
            message_program = _cel_program(str(validation["messageExpression"]), ("self",))
    except CelError as error:
        problem, program = str(error), None
    return _CelRule(
        rule=rule,
        message=str(validation.get("message") or f"failed rule: {rule}"),
        field_path=_parse_field_path(str(validation.get("fieldPath", ""))),
        program=program,
        message_program=message_program,
        problem=problem,
    )


def _cel_node(schema: Mapping[str, Any]) -> _CelNode | None:
    """The rules of a CRD's openAPIV3Schema, compiled, or None if it has none (transition rules,
    which need ``oldSelf``, are left out). Rules under allOf/anyOf/oneOf/not are not looked for."""
    rules = tuple(
        _compile_rule(validation)
        for validation in schema.get("x-kubernetes-validations") or ()
        if not _TRANSITION_RULE.search(str(validation.get("rule", "")))
    )
    properties = {
        name: node
        for name, sub in (schema.get("properties") or {}).items()
        if isinstance(sub, Mapping) and (node := _cel_node(sub)) is not None
    }
    additional, items = schema.get("additionalProperties"), schema.get("items")
    additional_node = _cel_node(additional) if isinstance(additional, Mapping) else None
    items_node = _cel_node(items) if isinstance(items, Mapping) else None
    if not rules and not properties and additional_node is None and items_node is None:
        return None
    return _CelNode(rules, properties, additional_node, items_node)


def _cel_escape(name: str) -> str | None:
    """How a CEL expression selects a property (Kubernetes escaping), or None if it cannot."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if not name or name[0].isdigit() or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        return None
    escapes = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}
    return re.sub(r"__|[.\-/]", lambda match: escapes[match.group(0)], name)


def _cel_value(value: Any, schema: Mapping[str, Any]) -> Any:
    """The value as a CEL rule sees it: after structural defaulting, integers as ints, numbers as
    doubles, and declared properties also under their escaped names (``self.__dash__``-style)."""
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            out = {key: _cel_value(item, properties[key]) if key in properties else item for key, item in value.items()}
            for key, sub in properties.items():
                absent = key not in out or (out[key] is None and not sub.get("nullable"))
                if absent and "default" in sub:  # null in a non-nullable field is pruned, then defaulted
                    out[key] = _cel_value(sub["default"], sub)
            for key in properties:
                if key in out and (alias := _cel_escape(key)) not in (None, key):
                    out.setdefault(alias, out[key])
            return out
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            return {key: _cel_value(item, additional) for key, item in value.items()}
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_cel_value(item, items) for item in value] if isinstance(items, Mapping) else value
    if schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_rules(node: _CelNode, value: Any, path: tuple[str | int, ...], errors: list[str]) -> None:
    if value is None:  # the API server does not run rules on null values
        return
    activation = _cel_env(("self",)).Activation({"self": value}) if node.rules else None
    for rule in node.rules:
        where = _json_path(path + rule.field_path)
        if rule.program is None:
            errors.append(f"{where}: rule cannot be evaluated offline: {rule.rule} (CEL unsupported: {rule.problem})")
            continue
        try:
            result = _cel_result(rule.program, activation).value()
        except CelError as error:  # Kubernetes: a runtime error fails the validation
            errors.append(f"{where}: {rule.message} (CEL evaluation error: {error})")
            continue
        if result is True:
            continue
        message = rule.message
        if rule.message_program is not None:
            try:
                evaluated = _cel_result(rule.message_program, activation).value()
            except CelError:  # as the API server does: fall back to message
                evaluated = None
            if isinstance(evaluated, str) and evaluated.strip():
                message = evaluated.strip()
        if result is not False:
            message += f" (the rule returned {result!r}, not a bool)"
        errors.append(f"{where}: {message} (CEL)")
    if isinstance(value, Mapping):
        for key, child in node.properties.items():
            if key in value:
                _check_rules(child, value[key], (*path, key), errors)
        if node.additional_properties is not None:
            for key, item in value.items():
                _check_rules(node.additional_properties, item, (*path, key), errors)
    if isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            _check_rules(node.items, item, (*path, index), errors)


def _blocks_cel(error: jsonschema.ValidationError) -> bool:
    return error.validator not in _NON_BLOCKING_VALIDATORS


def _cel_errors(obj: Mapping[str, Any], schema: Mapping[str, Any], node: _CelNode) -> list[str]:
    """The errors of the CEL rules in ``node`` (from ``schema``) on a custom resource."""
    value = _cel_value(obj, schema)
    metadata = value.get("metadata")
    if isinstance(metadata, Mapping) and "name" not in metadata and isinstance(metadata.get("generateName"), str):
        # The API server generates the name before it validates.
        value = {**value, "metadata": {**metadata, "name": metadata["generateName"] + "x0000"}}
    errors: list[str] = []
    _check_rules(node, value, (), errors)
    return errors


def unsupported_cel_rules(crd_dir: pathlib.Path | None = None) -> list[str]:
    """The CEL rules of the CRDs under ``crd_dir`` (default CRD_SCHEMA_DIR) that the engine cannot
    compile, as ``"<kind> <group>/<version> <path>: <rule>"`` (served versions; transition rules
    on oldSelf are left out). validate_custom_resource reports such a rule as an error on every
    object it applies to; ``evaluate_cel(rule, {"self": None})`` raises CelError with the reason.

    For every pinned CRD under shared/reference/crds (Karpenter, Kueue, Trainer, JobSet, KubeRay,
    Training Operator, KServe, GPU Operator, Prometheus Operator) this is empty: each rule compiles
    with the engine plus the functions added here (of which the rules need only find). The engine
    type-checks with ``self`` dynamically typed, so a rule it compiles may still fail at run time
    on a given object, e.g. a type mismatch the API server's typed check would have refused when
    the CRD was created; such a failure is reported as an evaluation error, never as a pass.
    """
    crd_dir = crd_dir or crd_schema_dir()
    if crd_dir is None or not crd_dir.is_dir():
        raise SchemaUnavailable(f"no CRD directory ({crd_dir}): set CRD_SCHEMA_DIR")
    found: set[str] = set()

    def walk(node: _CelNode, path: tuple[str, ...], where: str) -> None:
        for rule in node.rules:
            if rule.program is None:
                found.add(f"{where} {_schema_path(path)}: {rule.rule}")
        for key, child in node.properties.items():
            walk(child, (*path, key), where)
        if node.additional_properties is not None:
            walk(node.additional_properties, (*path, "[*]"), where)
        if node.items is not None:
            walk(node.items, (*path, "[*]"), where)

    for path in sorted(crd_dir.rglob("*.yaml")):
        for crd in _load_crds(path.resolve()):
            for version in crd["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if version.get("served") and isinstance(schema, Mapping) and (node := _cel_node(schema)):
                    walk(node, (), f"{crd['spec']['names']['kind']} {crd['spec']['group']}/{version['name']}")
    return sorted(found)


def _schema_path(parts: tuple[str, ...]) -> str:
    path = ""
    for part in parts:
        path += part if part == "[*]" else (f".{part}" if path else part)
    return path or "(root)"


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
