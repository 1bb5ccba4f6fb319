"""`KServe` (`ml-platform:kserve`): cert-manager, then KServe in Standard mode with its ClusterServingRuntimes.

Standard mode (formerly RawDeployment) runs each InferenceService as a plain Deployment with an HPA: no Knative,
no Istio. Order, each release waiting for the one before (a Release is done when its workloads are Ready):

1. cert-manager with its CRDs: kserve-resources always renders a cert-manager Certificate for its webhooks.
2. kserve-crd: the CRDs as chart templates, so upgrades update them. Uninstalling it deletes every
   InferenceService, so it is protected where the cluster is.
3. kserve-resources: the controller. Its webhooks (`failurePolicy: Fail`) serve once it is Ready.
4. kserve-runtime-configs: the ClusterServingRuntimes, validated by those webhooks. The chart creates them all;
   the ones not in `runtimes` get `disabled: true`. huggingfaceserver gets a memory `/dev/shm` of `shmSize`
   (off upstream): vLLM's tensor parallelism needs it.

No Ingress is created unless `ingressClassName` is set (the chart's default class is `istio`): models are reached
through their cluster-local Services. Kueue does not gate serving: its pod and Deployment integrations are off.
"""

from __future__ import annotations

from typing import Any, get_args

import pulumi

from components.config.kserve import KServeConfig, ServingRuntimeName
from components.kube import helm_release, register
from components.layer import KSERVE_READY, PROMETHEUS_CRDS, Layer
from components.versions import CERT_MANAGER, KSERVE_CRD, KSERVE_RESOURCES, KSERVE_RUNTIME_CONFIGS
from vocabulary.labels import MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import CERT_MANAGER_NAMESPACE, KSERVE_NAMESPACE

KSERVE_DEPLOYMENT_MODE = "Standard"
# KServe's pod mutator skips namespaces with this label (its own, so its controller is not mutated by itself).
KSERVE_CONTROL_PLANE_LABEL = {"control-plane": "kserve-controller-manager"}


def cert_manager_values(prometheus: bool) -> dict[str, Any]:
    system = dict(SYSTEM_NODE_SELECTOR)
    return {
        # Its CRDs from the chart (off by default); kept by Helm when the release goes, with every Certificate.
        "crds": {"enabled": True, "keep": True},
        "nodeSelector": system,
        "webhook": {"nodeSelector": system},
        "cainjector": {"nodeSelector": system},
        "startupapicheck": {"nodeSelector": system},
        "prometheus": {"enabled": prometheus, "servicemonitor": {"enabled": prometheus}},
    }


def kserve_values(config: KServeConfig) -> dict[str, Any]:
    gateway: dict[str, Any] = {"disableIngressCreation": config.ingress_class_name is None}
    if config.ingress_class_name is not None:
        gateway["ingressGateway"] = {"className": config.ingress_class_name}
    return {
        "kserve": {
            # The webhooks' Issuer (a Certificate is rendered either way).
            "certManager": {"enabled": True},
            "controller": {
                "deploymentMode": KSERVE_DEPLOYMENT_MODE,
                "gateway": gateway,
                "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
                "imagePullPolicy": "IfNotPresent",
            },
        }
    }


def runtime_values(config: KServeConfig) -> dict[str, Any]:
    runtimes: dict[str, Any] = {"enabled": True}
    for name in get_args(ServingRuntimeName):
        runtimes[name] = {"disabled": name not in config.runtimes}
    runtimes["huggingfaceserver"]["devShm"] = {"enabled": True, "sizeLimit": config.shm_size}
    # LLMInferenceServiceConfigs need the llmisvc CRDs, which the platform does not install.
    return {"kserve": {"servingruntime": runtimes, "llmisvcConfigs": {"enabled": False}}}


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    all_labels = {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "restricted", **labels}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": all_labels}}


class KServe(Layer[KServeConfig]):
    TYPE = "ml-platform:kserve:KServe"

    def build(self) -> dict[str, Any]:
        if not self.section.enabled:
            return {"charts": []}
        handle = self.handle
        prometheus = handle.installed(PROMETHEUS_CRDS)
        cert_ns = register(namespace(CERT_MANAGER_NAMESPACE, {}), self.in_cluster())
        kserve_ns = register(namespace(KSERVE_NAMESPACE, KSERVE_CONTROL_PLANE_LABEL), self.in_cluster())
        cert_manager = helm_release(
            CERT_MANAGER.name,
            CERT_MANAGER,
            cert_manager_values(bool(prometheus)),
            self.in_cluster(cert_ns, *prometheus),
            create_namespace=False,
        )
        protect = pulumi.ResourceOptions(protect=handle.platform.protect)
        crds = helm_release(
            KSERVE_CRD.name,
            KSERVE_CRD,
            {},
            pulumi.ResourceOptions.merge(self.in_cluster(kserve_ns), protect),
            create_namespace=False,
        )
        controller = helm_release(
            KSERVE_RESOURCES.name,
            KSERVE_RESOURCES,
            kserve_values(self.section),
            self.in_cluster(crds, cert_manager),
            create_namespace=False,
        )
        runtimes = helm_release(
            KSERVE_RUNTIME_CONFIGS.name,
            KSERVE_RUNTIME_CONFIGS,
            runtime_values(self.section),
            self.in_cluster(controller),
            create_namespace=False,
        )
        handle.provide(KSERVE_READY, controller, runtimes)
        return {"charts": [c.name for c in (CERT_MANAGER, KSERVE_CRD, KSERVE_RESOURCES, KSERVE_RUNTIME_CONFIGS)]}
