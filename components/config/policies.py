"""`ml-platform:policies`: the policy pack's enforcement and the in-cluster admission policies."""

from __future__ import annotations

from pydantic import Field

from components.config.base import ConfigModel, Enforcement


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
