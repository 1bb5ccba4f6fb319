"""Policy config files (policies/config/<stack>.json) -> rule Settings, in Pulumi's policy-config format:
`{"all": <level>, "<rule-id>": <level> | {"enforcementLevel": <level>, <property>: <value>}}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from rules import RULES, Enforcement, Settings

LEVELS = ("advisory", "mandatory", "remediate", "disabled")


# Properties each rule reads from its policy config (Pulumi policy-config format).
PROPERTIES = {"gpu-shm-size-limit": ("shmMinSize",), "no-time-slicing-in-production": ("environment",)}


def settings_from_config(config: Any) -> Settings:
    """Settings from a policy config; ValueError naming a misspelt rule id, property or level."""
    if not isinstance(config, Mapping):
        raise ValueError(f"a policy config is a JSON object of rule ids, not a {type(config).__name__}")
    known = {rule.id for rule in RULES}
    for key, entry in config.items():
        if key != "all" and key not in known:
            raise ValueError(f"{key!r} is not a rule id; rules: {', '.join(sorted(known))}")
        if isinstance(entry, Mapping):
            extra = set(entry) - {"enforcementLevel", *PROPERTIES.get(key, ())}
            if extra:
                allowed = ", ".join(["enforcementLevel", *PROPERTIES.get(key, ())])
                raise ValueError(f"{key}: unknown setting(s) {', '.join(sorted(extra))}; allowed: {allowed}")
        elif entry is not None and not isinstance(entry, str):
            raise ValueError(f"{key}: expected an enforcement level or an object, got {entry!r}")
    default = config.get("all")
    enforcement: dict[str, Enforcement] = {}
    properties: dict[str, Any] = {}
    for rule in RULES:
        entry = config.get(rule.id)
        level = entry.get("enforcementLevel") if isinstance(entry, Mapping) else entry
        chosen = level or default
        if chosen is not None:
            if chosen not in LEVELS:
                raise ValueError(f"{rule.id}: enforcement level {chosen!r}; allowed: {', '.join(LEVELS)}")
            # check.py cannot fix files: a rule the pack remediates is mandatory here.
            enforcement[rule.id] = cast(Enforcement, "mandatory" if chosen == "remediate" else chosen)
        if isinstance(entry, Mapping):
            properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
    return Settings(
        shm_min_size=str(properties.get("shmMinSize", "8Gi")),
        environment=str(properties.get("environment", "dev")),
        enforcement=enforcement,
    )


def load_settings(path: Path) -> Settings:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    return settings_from_config(config)
