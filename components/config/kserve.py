"""`ml-platform:kserve`: KServe in Standard mode (Deployments and HPA; no Knative, no Istio), with cert-manager."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from components.config.base import DNS_SUBDOMAIN, ConfigModel, ShmSize

# The runtimes kserve-runtime-configs v0.20.0 renders, by their values key (the ClusterServingRuntime is
# `kserve-<key>`; huggingfaceserver also switches kserve-huggingfaceserver-multinode).
ServingRuntimeName = Literal[
    "huggingfaceserver",
    "vllmserver",
    "tritonserver",
    "torchserve",
    "sklearnserver",
    "xgbserver",
    "lgbserver",
    "mlserver",
    "tensorflow",
    "pmmlserver",
    "paddleserver",
    "autogluonserver",
    "predictiveserver",
]


DEFAULT_RUNTIMES: tuple[ServingRuntimeName, ...] = ("huggingfaceserver", "tritonserver", "sklearnserver", "xgbserver")


class KServeConfig(ConfigModel):
    enabled: bool = Field(True, description="Install cert-manager and KServe (Standard mode) with its runtimes.")
    runtimes: list[ServingRuntimeName] = Field(
        default_factory=lambda: list(DEFAULT_RUNTIMES),
        max_length=13,
        description="ClusterServingRuntimes InferenceServices may use; the chart's others exist with "
        "`disabled: true`. vllmserver's image is `latest` upstream: prefer huggingfaceserver (vLLM inside).",
    )
    shm_size: ShmSize = Field(
        "8Gi",
        description="Memory /dev/shm of the huggingfaceserver runtime (vLLM and tensor parallelism need it).",
    )
    ingress_class_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="IngressClass of the Ingress KServe creates per InferenceService; unset: none (cluster-local "
        "Services only; expose models through your own Ingress or Gateway).",
    )

    @field_validator("runtimes")
    @classmethod
    def _unique(cls, runtimes: list[ServingRuntimeName]) -> list[ServingRuntimeName]:
        if len(set(runtimes)) != len(runtimes):
            raise ValueError("each runtime once")
        return runtimes
