"""Reading `Pulumi.<stack>.yaml` the way the Pulumi CLI does, and refusing what it refuses, with a clear message
instead of a traceback or a hang.

- UTF-8 only; one YAML document, a mapping with a `config:` mapping.
- Duplicate keys are errors (the CLI rejects them); keys are strings.
- Scalars the CLI reads as text stay text: dates, `!!binary`, yes/no/on/off (YAML 1.2 booleans are true and
  false). Sets and other shapes a config value cannot hold are errors naming the key.
- Alias expansion is bounded: a "billion laughs" document fails fast instead of hanging the plan, and an alias
  inside the node it names (a recursive value) is an error.
- `secure:` values (the CLI decrypts them) become placeholders, and the plan says where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer

# More values than any stack file needs, far fewer than an alias bomb expands to.
MAX_VALUES = 100_000
MAX_BYTES = 1_000_000
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.:/-]+")


class StackFileError(Exception):
    """A stack file the CLI would not read: the message names the file and what is wrong."""


@dataclass
class StackFile:
    project: str
    stack: str
    path: Path
    config: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


# libyaml's parser where PyYAML has it (a 1 MB file of small values reads in seconds, not half a minute), with
# PyYAML's Python composer in front of it as in policies/check.py: libyaml's C composer recurses per level and
# crashes on deep nesting, the Python one raises RecursionError.
_LOADER_BASES: tuple[Any, ...] = (Composer, yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else (yaml.SafeLoader,)


class _Loader(*_LOADER_BASES):  # type: ignore[misc]
    """A safe loader with the CLI's reading of scalars and duplicate keys."""

    def __init__(self, stream: str) -> None:
        _LOADER_BASES[-1].__init__(self, stream)
        Composer.__init__(self)  # CSafeLoader does not run it: the Python composer's anchors

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be text, not {type(key).__name__}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the Pulumi CLI rejects it)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ArithmeticError, LookupError, TypeError, ValueError):
            # `!!int abc`, `!!float ""`, `!!bool maybe`: PyYAML's constructors fail with Python errors.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r:.60} is not a {tag} value", node.start_mark
            ) from None


def _as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


def _no_set(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(None, None, "a YAML !!set is not a config value", node.start_mark)


# The CLI reads dates and binary scalars as the text written.
# Booleans as the CLI's YAML 1.2 reader (go-yaml v3) has them: true and false only. PyYAML's YAML 1.1 also reads
# yes/no/on/off as booleans, which the CLI hands to the program as text ("yes"): the offline plan must not accept
# `capacityBlock: yes` that `pulumi up` then refuses.
BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
# YAML 1.2 floats need no dot and may have an unsigned exponent (`1e3`, `2E10`); PyYAML's YAML 1.1 reads them as
# text, the CLI as numbers.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)
_Loader.add_constructor("tag:yaml.org,2002:binary", _as_text)
_Loader.add_constructor("tag:yaml.org,2002:set", _no_set)


class _RecursiveAliasError(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


def _expanded_size(node: yaml.Node, memo: dict[int, int], within: set[int]) -> int:
    """How many values the node stands for once aliases are expanded (shared nodes counted once per use).
    _RecursiveAliasError for a node that contains an alias to itself: it stands for an infinite value."""
    if id(node) in within:
        raise _RecursiveAliasError(node)
    if id(node) in memo:
        return memo[id(node)]
    within.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo, within) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, within) + _expanded_size(v, memo, within) for k, v in node.value)
    else:
        size = 1
    within.discard(id(node))
    memo[id(node)] = size = min(size, MAX_VALUES + 1)
    return size


def load_yaml(path: Path) -> Any:
    """The document of a stack file, read as the CLI reads it; StackFileError otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StackFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise StackFileError(f"{path}: {len(raw)} bytes; a stack file is at most {MAX_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        if len(nodes) > 1:
            raise StackFileError(f"{path}: {len(nodes)} YAML documents; a stack file is one")
        if not nodes or nodes[0] is None:
            return None
        try:
            memo: dict[int, int] = {}  # every node, once: the values written, aliases not expanded
            size = _expanded_size(nodes[0], memo, set())
        except _RecursiveAliasError as exc:
            raise StackFileError(
                f"{path}: line {exc.node.start_mark.line + 1}: an alias inside the node it names (a recursive alias);"
                " a config value cannot hold one"
            ) from None
        if size > MAX_VALUES and len(memo) > MAX_VALUES:
            raise StackFileError(f"{path}: more than {MAX_VALUES} values; no stack file needs that many")
        if size > MAX_VALUES:
            raise StackFileError(f"{path}: its aliases expand to more than {MAX_VALUES} values (a YAML alias bomb?)")
        # Constructed from the nodes already composed: the text is parsed once.
        loader = _Loader("")
        try:
            return loader.construct_document(nodes[0])
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML (as the Pulumi CLI reads it): {exc}") from None
    except RecursionError:
        raise StackFileError(f"{path}: nested too deeply") from None


def _plain(value: Any, where: str, placeholders: list[str]) -> Any:
    """Replace `secure:` values (the CLI would decrypt them) by a placeholder and say where."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            placeholders.append(where)
            return f"<secret {where}>"
        return {str(k): _plain(v, f"{where}.{k}", placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]", placeholders) for i, v in enumerate(value)]
    return value


def _text(value: Any) -> str:
    """A config value as the CLI hands it to the program: text as-is, scalars as their text, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _shown(key: Any) -> str:
    """A key as a message shows it: quoted and escaped unless plain, so that no control character or look-alike
    reaches a terminal or a CI log."""
    return key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else repr(key)


def read_stack_file(stack: str, project_dir: Path | None = None, path: Path | None = None) -> StackFile:
    project_dir = project_dir or Path(__file__).resolve().parents[1]
    project_doc = load_yaml(project_dir / "Pulumi.yaml")
    if not isinstance(project_doc, Mapping) or not isinstance(project_doc.get("name"), str):
        raise StackFileError(f"{project_dir / 'Pulumi.yaml'}: no project name")
    project = project_doc["name"]
    path = path or project_dir / f"Pulumi.{stack}.yaml"
    document = load_yaml(path)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise StackFileError(f"{path}: the document is a {type(document).__name__}; expected a mapping with config:")
    unknown = [_shown(k) for k in document if k not in ("config", "secretsprovider", "encryptedkey", "encryptionsalt")]
    if unknown:
        raise StackFileError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; expected config:")
    section = document.get("config") or {}
    if not isinstance(section, Mapping):
        raise StackFileError(f"{path}: config: is a {type(section).__name__}; expected a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    spelt: dict[str, str] = {}
    for key, value in section.items():
        if not isinstance(key, str):
            raise StackFileError(f"{path}: config key {key!r} is not text; keys look like ml-platform:cluster")
        full_key = key if ":" in key else f"{project}:{key}"
        if not all(full_key.partition(":")[::2]):
            raise StackFileError(f"{path}: config key {key!r} has no name; keys look like ml-platform:cluster")
        if full_key in spelt:
            # `teams` is `ml-platform:teams`: one would silently replace the other.
            both = f"config keys {spelt[full_key]!r} and {key!r} are both {_shown(full_key)}"
            raise StackFileError(f"{path}: {both}; keep one")
        spelt[full_key] = key
        before = len(placeholders)
        plain = _plain(value, full_key, placeholders)
        if len(placeholders) > before:
            secret_keys.append(full_key)
        try:
            config[full_key] = _text(plain)
        except (TypeError, ValueError) as exc:
            raise StackFileError(f"{path}: {_shown(full_key)}: not a config value: {exc}") from None
    return StackFile(project, stack, path, config, secret_keys, placeholders)
