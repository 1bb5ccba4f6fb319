"""IP ranges the config rules and the cluster components both reason about (standard library only)."""

from __future__ import annotations

import ipaddress

PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def is_private_cidr(cidr: str) -> bool:
    """RFC 1918 (and shared 100.64/10) space: what a private control-plane endpoint can be reached from."""
    network = ipaddress.ip_network(cidr)
    return isinstance(network, ipaddress.IPv4Network) and any(network.subnet_of(r) for r in PRIVATE_RANGES)
