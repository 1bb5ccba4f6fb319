"""Namespaces with a fixed meaning: the platform's own and Kubernetes' system namespaces."""

from __future__ import annotations

PLATFORM_NAMESPACE = "ml-platform-system"
KUBERNETES_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# Never a team's namespace, never checked by the admission policies.
PLATFORM_OWNED_NAMESPACES = (*KUBERNETES_SYSTEM_NAMESPACES, PLATFORM_NAMESPACE)
