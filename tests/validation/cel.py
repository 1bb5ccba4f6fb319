"""CEL: the cel-expr-python environment with the Kubernetes CEL library functions it lacks,
evaluate_cel, and the x-kubernetes-validations rules of CRDs (compiled, walked and checked),
with unsupported_cel_rules.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from .crd import SchemaUnavailable, _crd_schema, _load_crds, crd_schema_dir
from .errors import _json_path
from .quantities_names import _go_regex_to_python
from .quantity import compares_quantities, descriptor_pool_with_quantity, is_quantity_message, quantity_functions

# The engine is cel-expr-python (Google's C++ CEL): it type-checks at compile time, so a rule
# calling a function it does not know fails to compile instead of passing, and its strings
# extension has the cel-go ext.Strings functions Kubernetes enables (split, lowerAscii, trim, ...).
# What it lacks of the Kubernetes CEL library is added here in Python: the regex library (find,
# findAll), the lists library (isSorted, sum, min, max, indexOf, lastIndexOf) and the quantity
# library (quantity.py: quantity, isQuantity, sign and the Quantity member functions). Of those,
# the pinned CRDs use only find; url, ip, cidr, semver, format, authz and the sets extension are
# not implemented, so a rule using them is reported by unsupported_cel_rules.


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
def _quantity_library() -> Any:
    return cel.CelExtension("kubernetes.quantity", quantity_functions())


@functools.cache
def _cel_env(variables: tuple[str, ...]) -> Any:
    return cel.NewEnv(
        descriptor_pool=descriptor_pool_with_quantity(),  # declares the kubernetes.Quantity type
        variables=dict.fromkeys(variables, cel.Type.DYN),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional(), _kubernetes_library(), _quantity_library()],
    )


@functools.cache
def _cel_program(expression: str, variables: tuple[str, ...]) -> Any:
    """The compiled expression, cached by its text: a rule shared by many CRDs compiles once."""
    try:
        program = _cel_env(variables).compile(expression)
    except Exception as error:  # the engine raises RuntimeError("INVALID_ARGUMENT: ERROR: ...")
        raise CelError(" ".join(str(error).split())) from None
    if re.search("quantity", expression, re.IGNORECASE) and compares_quantities(program):
        # The engine would compare the messages that stand for Quantity values, not their numbers.
        raise CelError(
            "Quantity values compared with ==, !=, in, indexOf or lastIndexOf: not supported offline"
            " (Kubernetes compares their numbers); use compareTo, isLessThan or isGreaterThan"
        )
    return program


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
    (bool, int, float, str, list, dict, ...). Raises CelError on compile or evaluation errors, and
    for a result that is or holds a Quantity (it has no plain value: a variable holding one is not
    supported). Programs are cached by (expression, variable names)."""
    program = _cel_program(expression, tuple(sorted(bindings)))
    result = _cel_result(program, _cel_env(tuple(sorted(bindings))).Activation(dict(bindings))).plain_value()
    if _holds_quantity(result):
        raise CelError("the expression evaluates to a Quantity, which has no plain value (use e.g. asInteger())")
    return result


def _holds_quantity(value: Any) -> bool:
    if isinstance(value, list):
        return any(_holds_quantity(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_quantity(item) for item in value.values())
    return is_quantity_message(value)


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


@functools.cache
def _crd_cel_rules(
    crd_dir: pathlib.Path, group: str, version: str, kind: str
) -> tuple[dict[str, Any], _CelNode] | None:
    schema, _ = _crd_schema(crd_dir, group, version, kind)
    node = None if schema is None else _cel_node(schema)
    return None if schema is None or node is None else (schema, node)


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
    with the engine plus the functions added here (of which the rules need only find). A rule that
    compares Quantity values with == (see quantity.py) is reported here too. The engine
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
