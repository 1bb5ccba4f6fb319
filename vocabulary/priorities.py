"""PriorityClass names and values: serving is never evicted for an experiment."""

from __future__ import annotations

from typing import Literal, get_args

PriorityClassName = Literal["production-serving", "training-critical", "development"]
PRIORITY_CLASS_NAMES: tuple[PriorityClassName, ...] = get_args(PriorityClassName)
# Higher preempts lower; development never preempts anything (it waits for room instead).
PRIORITY_VALUES: dict[PriorityClassName, int] = {
    "production-serving": 1000,
    "training-critical": 500,
    "development": 100,
}
PRIORITY_DESCRIPTIONS: dict[PriorityClassName, str] = {
    "production-serving": "Production inference: preempts training and development, is never preempted by them.",
    "training-critical": "Training that must finish: preempts development.",
    "development": "Experiments and notebooks: never preempts anything, waits for room instead.",
}
NEVER_PREEMPTING: tuple[PriorityClassName, ...] = ("development",)
# Only teams allowed it may use this class: a ResourceQuota scoped to it is 0 pods everywhere else.
RESTRICTED_PRIORITY: PriorityClassName = "production-serving"
