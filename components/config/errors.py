"""Config problems: where (stack key path), what was there, what is allowed; all of them in one error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from components.config.base import NAMESPACE

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    """One config problem: where (stack key path), what was there, what is allowed."""

    path: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.value is MISSING:
            got = "missing"
        elif "kubeconfig" in self.path.lower() and self.value is not None:
            got = "got [secret]"  # error output lands in CI logs: never echo credentials
        else:
            text = json.dumps(self.value, default=str)
            got = f"got {text if len(text) <= 120 else text[:117] + '...'}"
        return f"{self.path}: {got}; {self.allowed}"


class ConfigError(Exception):
    def __init__(self, problems: Iterable[Problem], stack_file: str = "the stack file") -> None:
        # A rule may meet the same problem through two pools (a shared MIG layout): say it once.
        self.problems = list({str(p): p for p in problems}.values())
        lines = [f"{len(self.problems)} problem(s) in {stack_file}; nothing was deployed:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def key_path(loc: Iterable[int | str]) -> str:
    """('gpuPools', 1, 'maxNodes') -> 'ml-platform:gpuPools[1].maxNodes'; a key that is not a plain name (a MIG
    profile, a tag with dots or slashes, an unknown stack key with a space) is quoted:
    'ml-platform:gpu.migConfigs.small["1g.10gb"]', 'ml-platform:["gpu pools"]'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            text += f"[{json.dumps(part)}]"
        else:
            text += f".{part}" if text else part
    return f"{NAMESPACE}:{text}"
