"""Loading a stack's config: the schema (pydantic) and the cross-key rules, every problem at once.

`load_platform_config` raises `ConfigError` listing every problem, each naming its stack key path, the value and
what is allowed; under the Pulumi CLI `__main__.py` turns it into a `RunError` (no traceback, nothing registered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from components.config.base import NAMESPACE, PATTERN_HELP
from components.config.errors import MISSING, ConfigError, Problem, key_path
from components.config.platform import STACK_KEYS, PlatformConfig
from components.config.rules import check_rules

# How the offline plan writes a `secure:` value it cannot decrypt (tools/stack_file.py).
SECRET_PLACEHOLDER_PREFIX = "<secret "


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that sits at a location of the stack tree (for listing allowed keys)."""
    current: Any = PlatformConfig
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            current = field.annotation
        while get_origin(current) is not None or isinstance(current, type(int | None)):
            args = [a for a in get_args(current) if a is not type(None)]
            if get_origin(current) is Annotated or not args:
                break
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else args[-1]
            if isinstance(part, int) or models:
                break
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_keys(model: type[BaseModel] | None) -> str:
    if model is None:
        return "this key is not part of the schema"
    return "allowed keys: " + ", ".join(f.alias or n for n, f in model.model_fields.items())


# pydantic names the member of a union it tried in the location (`gpuQuota.int`, `gpuQuota["dict[str,int]"]`):
# not a key the user wrote. Only right after a field whose type is a union: a key the user named `int` stays.
_UNION_MEMBER = re.compile(r"^(int|str|bool|float|none|(list|dict|tuple|set)\[.*\])$")


def _union_fields(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """The stack keys (aliases) of every field in the model tree whose type is a union of two or more types."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    found: set[str] = set()
    for name, field in model.model_fields.items():
        members = [a for a in get_args(field.annotation) if a is not type(None)]
        if get_origin(field.annotation) in (Union, UnionType) and len(members) > 1:
            found.add(field.alias or name)
        stack: list[Any] = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= _union_fields(annotation, seen)
            stack += get_args(annotation)
    return found


UNION_FIELDS = _union_fields(PlatformConfig)


def _without_union_members(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (i > 0 and loc[i - 1] in UNION_FIELDS and isinstance(part, str) and _UNION_MEMBER.match(part))
    )


def _problems_from(error: ValidationError, prefix: tuple[int | str, ...]) -> list[Problem]:
    """One problem per key: where each member of a union said what it expected, one message with both."""
    merged: dict[str, Problem] = {}
    problems: list[Problem] = []
    for problem, union in _problem_list(error, prefix):
        first = merged.get(problem.path)
        if union and first is not None and first.value == problem.value:
            merged[problem.path] = Problem(
                first.path, first.value, f"{first.allowed} or {problem.allowed.removeprefix('expected ')}"
            )
            problems[problems.index(first)] = merged[problem.path]
            continue
        if union:
            merged[problem.path] = problem
        problems.append(problem)
    return problems


def _problem_list(error: ValidationError, prefix: tuple[int | str, ...]) -> list[tuple[Problem, bool]]:
    """Each error as a problem, and whether pydantic tried it as a member of a union."""
    problems = []
    for err in error.errors(include_url=False):
        kept = _without_union_members(tuple(err["loc"]))
        union = len(kept) < len(err["loc"])
        loc = prefix + kept
        kind, msg = err["type"], err["msg"]
        if kind == "extra_forbidden":
            problems.append(
                (Problem(key_path(loc), err["input"], "unknown key; " + _allowed_keys(_model_at(loc[:-1]))), union)
            )
            continue
        value = MISSING if kind == "missing" else err["input"]
        if isinstance(value, str) and value.startswith(SECRET_PLACEHOLDER_PREFIX):
            # A secure: value the offline plan cannot decrypt, where the schema wants a number, list or object.
            msg = "a secret (secure:) value, which the offline plan cannot decrypt: keep this setting in plain text"
            problems.append((Problem(key_path(loc), "[secret]", msg), union))
            continue
        if kind == "missing":
            model = _model_at(loc[:-1])
            field = next(
                (f for n, f in (model.model_fields.items() if model else []) if (f.alias or n) == loc[-1]), None
            )
            msg = "required: " + (field.description or "a value") if field else "required"
        elif msg.startswith("Input should be "):
            # "a valid dictionary or instance of ClusterConfig" -> "a mapping": no Python class names.
            msg = "expected " + re.sub(r" or instance of \w+", "", msg.removeprefix("Input should be "))
            msg = msg.replace("a valid dictionary", "a mapping of keys to values")
            msg = msg.replace("a valid tuple", "a list").replace("a valid list", "a list")
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        elif msg.startswith("String should match pattern"):
            msg = PATTERN_HELP.get(str(err.get("ctx", {}).get("pattern")), msg.replace("String should", "expected to"))
        problems.append((Problem(key_path(loc), value, msg), union))
    return problems


class _UndecodableError(ValueError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _decode(key: str, value: Any) -> Any:
    """Pulumi hands every config value over as a string; objects and arrays arrive JSON-encoded."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise _UndecodableError(Problem(key_path([key]), value, f"not valid JSON/YAML structure: {exc}")) from None
    return value


def load_platform_config(raw: Mapping[str, Any], stack_file: str = "the stack file") -> PlatformConfig:
    """Validate the `ml-platform:*` config of one stack; raise ConfigError listing every problem."""
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    undecodable: set[str] = set()
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            decoded = _decode(key, value)
        except _UndecodableError as exc:
            if key in STACK_KEYS:
                # Text that opens like JSON but is not: say so, and check the other keys all the same.
                problems.append(exc.problem)
                undecodable.add(key_path([key]))
                continue
            decoded = value
        if key not in STACK_KEYS:
            problems.append(Problem(key_path([key]), decoded, "unknown key; allowed keys: " + ", ".join(STACK_KEYS)))
            continue
        sections[key] = decoded

    try:
        config = PlatformConfig.model_validate(sections)
    except ValidationError as exc:
        # A key that did not decode is not missing: its problem is said already.
        problems += [p for p in _problems_from(exc, ()) if not (p.value is MISSING and p.path in undecodable)]
        # Semantic rules still run on whatever parsed, so one run shows every problem.
        problems += check_rules(sections, None)
        raise ConfigError(problems, stack_file) from None
    problems += check_rules(sections, config)
    if problems:
        raise ConfigError(problems, stack_file)
    return config


def read_pulumi_config() -> dict[str, Any]:
    """Every config value of the running stack (what the CLI's language host or the mocks provide)."""
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    return values
