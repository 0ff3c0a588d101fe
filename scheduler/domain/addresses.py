"""Which client a request counts against in per-address limits.

IPv4: the address. IPv6: its /64 network, because one home or phone is given a
whole /64 and can pick a new address in it for every request; counting single
IPv6 addresses would make per-address limits free to dodge. An IPv4 address
written as IPv6 (``::ffff:192.0.2.1``) counts as the IPv4 address.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64


def client_key(host: str | None) -> str:
    """The identity per-address limits count; anything not an address stays as given."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host  # a proxy's odd value (uvicorn passes it on): its own key
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
