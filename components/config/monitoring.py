"""`ml-platform:monitoring`: Prometheus, Grafana and the GPU alerts (kube-prometheus-stack)."""

from __future__ import annotations

from pydantic import Field

from components.config.base import DURATION, PROMETHEUS_DURATION, ConfigModel


class PrometheusConfig(ConfigModel):
    retention: str = Field("15d", pattern=PROMETHEUS_DURATION, description="How long Prometheus keeps samples.")
    storage_gib: int = Field(
        50, ge=10, le=16384, alias="storageGiB", description="Prometheus volume (the default StorageClass)."
    )


class AlertsConfig(ConfigModel):
    idle_gpu_utilization: int = Field(
        10, ge=1, le=100, description="A GPU allocated to a pod and busy less than this % is idle."
    )
    idle_for: str = Field("1h", pattern=DURATION, description="How long a GPU must be idle before the alert fires.")
    pending_for: str = Field("10m", pattern=DURATION, description="How long a GPU pod may stay Pending.")
    gpu_memory_full: int = Field(95, ge=50, le=100, description="GPU memory use (%) that counts as near full.")


class MonitoringConfig(ConfigModel):
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig, description="Retention and storage.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Thresholds of the GPU alerts.")
