"""Policy config files (policies/config/<stack>.json) -> rule Settings, in Pulumi's policy-config format:
`{"all": <level> | {"enforcementLevel": <level>}, "<rule-id>": <level> | {"enforcementLevel": <level>, <property>:
<value>}}`.

Everything is validated when the config is read, before any manifest is: a value the Pulumi engine would refuse
(the pack's config schemas in pack.py hold the same patterns and enums) is an error naming its key, never a setting
that silently changes what is checked.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from rules import RULES, Enforcement, Settings
from rules.values import quantity

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
ENVIRONMENTS = ("dev", "staging", "prod")
# A quantity as the pack's config schema spells it (no exponents, no milli): pack.py uses this pattern too.
SHM_MIN_SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
# Far larger than any policy config; a config path that is a huge file fails instead of filling memory.
MAX_CONFIG_BYTES = 1_000_000


class ConfigError(ValueError):
    """A policy config that cannot be used: the message names the file or the key."""


def _json(value: Any) -> str:
    """A config value as the file spells it, cut short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _shm_min_size(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(SHM_MIN_SIZE_PATTERN, value) or quantity(value) is None:
        raise ConfigError(
            f'shmMinSize {_json(value)} is not a size such as "8Gi" (a string: digits, then an optional unit Ki, Mi, '
            "Gi, Ti, Pi, Ei, k, M, G, T, P or E; below 2^63)"
        )
    return value


def _environment(value: Any) -> str:
    if not isinstance(value, str) or value not in ENVIRONMENTS:
        raise ConfigError(f"environment {_json(value)}; allowed: {', '.join(map(json.dumps, ENVIRONMENTS))}")
    return value


# Properties each rule reads from its policy config (Pulumi policy-config format), each with its validation.
PROPERTIES: dict[str, dict[str, Callable[[Any], str]]] = {
    "gpu-shm-size-limit": {"shmMinSize": _shm_min_size},
    "no-time-slicing-in-production": {"environment": _environment},
}


def _level(key: str, entry: Any) -> str | None:
    """The enforcement level an entry sets (None: none). As the engine's parsePolicyPackConfig: a level string, or
    an object with an optional `enforcementLevel` string; anything else (null, a number, a list) is an error."""
    if isinstance(entry, Mapping):
        if "enforcementLevel" not in entry:
            return None
        level = entry["enforcementLevel"]
    elif isinstance(entry, str):
        level = entry
    else:
        raise ConfigError(f"{key}: expected an enforcement level or an object, got {_json(entry)}")
    if not isinstance(level, str) or level not in LEVELS:
        raise ConfigError(f"{key}: enforcement level {_json(level)}; allowed: {', '.join(LEVELS)}")
    return level


def settings_from_config(config: Any) -> Settings:
    """Settings from a policy config; ConfigError (a ValueError) naming a misspelt rule id, property, level, or a
    property value a rule cannot use."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a policy config is a JSON object of rule ids, not a {type(config).__name__}")
    known = {rule.id for rule in RULES}
    levels: dict[str, str | None] = {}
    properties: dict[str, str] = {}
    for key, entry in config.items():
        if key != "all" and key not in known:
            raise ConfigError(f"{key!r} is not a rule id; rules: {', '.join(sorted(known))}")
        levels[key] = _level(key, entry)
        if isinstance(entry, Mapping):
            allowed = PROPERTIES.get(key, {})
            extra = set(entry) - {"enforcementLevel", *allowed}
            if extra:
                names = ", ".join(["enforcementLevel", *allowed])
                raise ConfigError(f"{key}: unknown setting(s) {', '.join(sorted(map(str, extra)))}; allowed: {names}")
            for name, check in allowed.items():
                if name in entry:
                    try:
                        properties[name] = check(entry[name])
                    except ConfigError as exc:
                        raise ConfigError(f"{key}: {exc}") from None
    enforcement: dict[str, Enforcement] = {}
    for rule in RULES:
        chosen = levels.get(rule.id) or levels.get("all")
        if chosen is not None:
            # check.py cannot fix files: a rule the pack remediates is mandatory here.
            enforcement[rule.id] = cast(Enforcement, "mandatory" if chosen == "remediate" else chosen)
    return Settings(
        shm_min_size=properties.get("shmMinSize", "8Gi"),
        environment=properties.get("environment", "dev"),
        enforcement=enforcement,
    )


class _DuplicateKeyError(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKeyError(key)  # json.loads would keep the last silently, the engine too
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON has no such numbers


def load_settings(path: Path) -> Settings:
    """The Settings of a policy config file; ConfigError naming the file (and the key) for anything wrong with it."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device is not read)"
            raise ConfigError(f"{path}: {kind}, not a policy config")
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy config: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes, not a policy config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}), not a policy config") from None
    try:
        config = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    except _DuplicateKeyError as exc:
        raise ConfigError(f"{path}: key {json.dumps(exc.args[0])} appears more than once in one object") from None
    except RecursionError:
        raise ConfigError(f"{path}: the policy config file is nested too deeply to be a policy config") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    try:
        return settings_from_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
