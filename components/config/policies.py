"""`ml-platform:policies`: the policy pack's enforcement and the in-cluster admission policies."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from components.config.base import DNS_LABEL, ConfigModel, Enforcement


class PoliciesConfig(ConfigModel):
    enforcement: Enforcement | None = Field(None, description="Default advisory in dev, mandatory otherwise.")
    exempt_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces the admission policies skip besides kube-system, kube-public, kube-node-lease and the "
        "platform's own (ml-platform-system, gpu-operator, monitoring).",
    )
    default_shm: bool = Field(
        False,
        description="Opt-in MutatingAdmissionPolicy (GA from Kubernetes 1.36) that adds a 16Gi memory /dev/shm to "
        "GPU pods that mount nothing there.",
    )

    @field_validator("exempt_namespaces")
    @classmethod
    def _namespace_names(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if len(n) > 63 or not re.fullmatch(DNS_LABEL, n)]
        if bad:
            raise ValueError(f"not namespace names (DNS labels of at most 63 characters): {', '.join(map(repr, bad))}")
        return names
