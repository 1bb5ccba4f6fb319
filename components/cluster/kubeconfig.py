"""Kubeconfigs for the Kubernetes provider. They carry no token: auth is an exec plugin at run time."""

from __future__ import annotations

import json


def _kubeconfig(name: str, server: str, ca_data: str, user: dict[str, object]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [{"name": name, "user": user}],
        }
    )


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """Token from `aws eks get-token` (AWS CLI v2), as `aws eks update-kubeconfig` writes it."""
    return _kubeconfig(
        cluster_name,
        endpoint,
        ca_data,
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
                "interactiveMode": "Never",
            }
        },
    )


def gke_kubeconfig(cluster_name: str, endpoint: str, ca_data: str) -> str:
    """Short-lived tokens from gke-gcloud-auth-plugin, as `gcloud container clusters get-credentials` sets up."""
    return _kubeconfig(
        cluster_name,
        f"https://{endpoint}",
        ca_data,
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "gke-gcloud-auth-plugin",
                "installHint": "Install gke-gcloud-auth-plugin for use with kubectl by following "
                "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
                "provideClusterInfo": True,
                "interactiveMode": "Never",
            }
        },
    )
