"""Which requests go through an instance's HTTP proxy: all, except to hosts ``NO_PROXY``
names (curl's rules: comma-separated host names matched with their subdomains, an
optional ``:port``, IP addresses and CIDR ranges, ``*`` for every host)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit


def no_proxy_from(environ: Mapping[str, str] = os.environ) -> str:
    """``NO_PROXY`` (or ``no_proxy``) of ``environ``."""
    return environ.get("NO_PROXY") or environ.get("no_proxy") or ""


def _ip_match(host: str, entry: str) -> bool | None:
    """Whether IP ``host`` is in ``entry`` (address or range); None when either is not an IP."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None
    return address in network


def bypasses_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """True when ``NO_PROXY`` (its value ``no_proxy``) exempts ``host:port``."""
    host = host.lower().rstrip(".")
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.count(":") == 1 and not entry.endswith("]"):
            name, _, port_text = entry.partition(":")
            if not port_text.isdigit():
                continue
            entry_port = int(port_text)
        if entry_port is not None and entry_port != port:
            continue
        ip_match = _ip_match(host, name)
        if ip_match is not None:
            if ip_match:
                return True
            continue
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def proxy_for(url: str, proxy_url: str | None, no_proxy: str) -> str | None:
    """The proxy to use for ``url``: ``proxy_url`` unless ``NO_PROXY`` exempts its host."""
    if proxy_url is None:
        return None
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    if bypasses_proxy(parts.hostname or "", parts.port or default_port, no_proxy):
        return None
    return proxy_url
