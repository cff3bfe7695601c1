"""The outbound guard: where a task may connect, checked before every connection.

Policy (documented in the README):

- Only ``http`` and ``https`` URLs.
- Denied by default: link-local networks (``169.254.0.0/16``, ``fe80::/10``), where every cloud
  keeps its instance-metadata service, the other known metadata addresses (``fd00:ec2::254``,
  ``100.100.100.200``, ``192.0.0.192``), the unspecified addresses (``0.0.0.0/8``, ``::``) and the
  metadata host names (``metadata.google.internal``...). IPv4 addresses embedded in IPv6 ones
  (``::ffff:169.254.169.254``, NAT64, 6to4) are checked as the IPv4 address they carry.
- Allowed by default: everything else, loopback and private networks included.
- The host is resolved *before* connecting, off the event loop, and every address it resolves to
  is checked; the connection then goes to one of exactly those addresses (no second lookup that
  a rebinding DNS server could answer differently).
- ``allowedHosts`` turns the policy into an allowlist: only matching hosts are reached. An entry
  is a host name (``api.example.com``), a wildcard (``*.example.com``: subdomains only), an IP
  address or a CIDR network. A denied address is reachable only when an IP or CIDR entry names it
  explicitly (a host-name entry never lifts the deny list); a denied host name only when listed
  exactly.
- A proxy (``options.proxy``) is checked as a destination like any other, before the target.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plait_sdk import TaskFailure

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Networks refused unless an ``allowedHosts`` IP/CIDR entry names them, with the reason shown.
DENIED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = (
    (ipaddress.ip_network("169.254.0.0/16"), "link-local, where cloud metadata services live"),
    (ipaddress.ip_network("fe80::/10"), "IPv6 link-local"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "AWS instance metadata (IPv6)"),
    (ipaddress.ip_network("100.100.100.200/32"), "Alibaba Cloud instance metadata"),
    (ipaddress.ip_network("192.0.0.192/32"), "Oracle Cloud instance metadata"),
    (ipaddress.ip_network("0.0.0.0/8"), "unspecified address"),
    (ipaddress.ip_network("::/128"), "unspecified address"),
)

#: Host names of metadata services, refused before any lookup (compared without a trailing dot).
DENIED_HOSTNAMES: frozenset[str] = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostNotAllowed(TaskFailure):
    """The outbound guard refused a destination."""


@dataclass(frozen=True)
class AllowEntry:
    """One parsed ``allowedHosts`` entry: a network, or a host name (maybe ``*.`` wildcard)."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None
    wildcard: bool = False

    def matches_name(self, host: str) -> bool:
        if self.name is None:
            return False
        if self.wildcard:
            return host.endswith("." + self.name)
        return host == self.name


def parse_allow_entry(text: str) -> AllowEntry:
    """An ``allowedHosts`` entry, or ``ValueError`` explaining what is accepted."""
    entry = text.strip().lower().rstrip(".")
    if entry.startswith("[") and entry.endswith("]"):
        entry = entry[1:-1]
    if not entry or entry == "*":
        raise ValueError(
            f"allowedHosts entry {text!r}: give a host name, *.domain, an IP address or a CIDR "
            "network (a bare '*' is not accepted: leave allowedHosts unset instead)"
        )
    try:
        return AllowEntry(text=text, network=ipaddress.ip_network(entry, strict=False))
    except ValueError:
        pass
    wildcard = entry.startswith("*.")
    name = entry[2:] if wildcard else entry
    if not name or "*" in name or "/" in name or ":" in name or " " in name:
        raise ValueError(
            f"allowedHosts entry {text!r}: give a host name, *.domain, an IP address or a CIDR "
            "network"
        )
    return AllowEntry(text=text, name=name, wildcard=wildcard)


def effective_address(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), else ``address`` itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def denied_match(address: IPAddress) -> tuple[IPAddress, IPNetwork, str] | None:
    """The address checked, the denied network it is in and why, or ``None`` when allowed."""
    for candidate in dict.fromkeys((address, effective_address(address))):
        for network, reason in DENIED_NETWORKS:
            if candidate.version == network.version and candidate in network:
                return candidate, network, reason
    return None


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order (``getaddrinfo`` in a thread)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in found:
            found.append(address)
    return found


class Guard:
    """The outbound policy of one task run."""

    def __init__(self, allowed_hosts: Sequence[str] | None = None) -> None:
        self.allow: list[AllowEntry] | None = (
            None if allowed_hosts is None else [parse_allow_entry(h) for h in allowed_hosts]
        )

    def _networks(self) -> Iterable[IPNetwork]:
        return (e.network for e in self.allow or () if e.network is not None)

    def _lifted(self, address: IPAddress, denied: IPNetwork) -> bool:
        """True when an entry inside the denied network names ``address``.

        A wider entry (``0.0.0.0/0``, ``169.0.0.0/8``) lifts nothing: the denied range, or an
        address or network inside it, has to be named.
        """
        return any(
            n.version == denied.version and address in n and n.subnet_of(denied)  # type: ignore[arg-type]
            for n in self._networks()
        )

    async def vet(self, scheme: str, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host`` may use, or :class:`HostNotAllowed`."""
        if scheme not in ("http", "https"):
            raise HostNotAllowed(f"refused {scheme}:// URL: only http and https are allowed")
        name = host.lower().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        literal: IPAddress | None
        try:
            literal = ipaddress.ip_address(name)
        except ValueError:
            literal = None
        listed = any(e.name == name and not e.wildcard for e in self.allow or ())
        if literal is None and name in DENIED_HOSTNAMES and not listed:
            raise HostNotAllowed(
                f"refused to connect to {host}: cloud metadata host names are blocked "
                "(list the exact name and its address in options.allowedHosts to allow it)"
            )
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await resolve(name, port)
            except (socket.gaierror, UnicodeError) as error:
                raise TaskFailure(f"cannot resolve host {host}: {error}") from None
            if not addresses:
                raise TaskFailure(f"cannot resolve host {host}: no address")
        parsed = [ipaddress.ip_address(a) for a in addresses]
        if self.allow is not None:
            by_name = literal is None and any(e.matches_name(name) for e in self.allow)
            by_network = all(
                any(a.version == n.version and a in n for n in self._networks()) for a in parsed
            )
            if not (by_name or by_network):
                raise HostNotAllowed(
                    f"refused to connect to {host}: not in options.allowedHosts "
                    f"({', '.join(e.text for e in self.allow) or 'empty'})"
                )
        for address in parsed:
            match = denied_match(address)
            if match is not None and not self._lifted(match[0], match[1]):
                reason = match[2]
                shown = host if str(address) == name else f"{host} ({address})"
                raise HostNotAllowed(
                    f"refused to connect to {shown}: blocked address ({reason}); name the "
                    "address or its network in options.allowedHosts to allow it"
                )
        return addresses
