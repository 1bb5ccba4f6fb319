"""`ml-platform:monitoring`: Prometheus, Grafana and the GPU alerts (kube-prometheus-stack)."""

from __future__ import annotations

from pydantic import Field, field_validator

from components.config.base import DURATION, PROMETHEUS_DURATION, ConfigModel, duration_seconds

TEN_YEARS, ONE_WEEK = 10 * 365 * 86400, 7 * 86400


def _bounded(value: str, most: int, most_text: str) -> str:
    seconds = duration_seconds(value)
    if seconds <= 0:
        raise ValueError("must be longer than 0")
    if seconds > most:
        raise ValueError(f"at most {most_text}")
    return value


class PrometheusConfig(ConfigModel):
    retention: str = Field("15d", pattern=PROMETHEUS_DURATION, description="How long Prometheus keeps samples.")

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        return _bounded(value, TEN_YEARS, "10y")

    storage_gib: int = Field(
        50, ge=10, le=16384, alias="storageGiB", description="Prometheus volume (the default StorageClass)."
    )


class AlertsConfig(ConfigModel):
    idle_gpu_utilization: int = Field(
        10, ge=1, le=99, description="A GPU allocated to a pod and busy less than this % is idle."
    )
    idle_for: str = Field("1h", pattern=DURATION, description="How long a GPU must be idle before the alert fires.")
    pending_for: str = Field("10m", pattern=DURATION, description="How long a GPU pod may stay Pending.")
    gpu_memory_full: int = Field(95, ge=50, le=99, description="GPU memory use (%) that counts as near full.")

    @field_validator("idle_for", "pending_for")
    @classmethod
    def _alert_duration(cls, value: str) -> str:
        return _bounded(value, ONE_WEEK, "168h (a week)")


class MonitoringConfig(ConfigModel):
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig, description="Retention and storage.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Thresholds of the GPU alerts.")
