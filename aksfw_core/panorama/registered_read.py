"""One read of a target's whole registered-IP table within what a device accepts:
`show object registered-ip` pages of at most 500 entries from start-points up to 100,000,
its count first, and the table read network by network when paging cannot reach it all
(`PanoramaClient.registered` runs it).
"""

from __future__ import annotations

import ipaddress
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable

from aksfw_core.errors import NonRetryable, Retryable
from aksfw_core.logs import log_event
from aksfw_core.panorama import xmlapi

log = logging.getLogger(__name__)

PAGE_SIZE = xmlapi.REGISTERED_MAX_LIMIT
"""Entries per `show object registered-ip` page (the PAN-OS maximum)."""


class RegisteredRead:
    """One read of the registered-IP table within what a device accepts (`limit` at most
    500, `start-point` at most 100,000) and within a number of requests."""

    def __init__(
        self,
        call: Callable[[dict[str, str], str], ET.Element],
        max_requests: int,
        target: str | None = None,
    ):
        self._call = call
        self._max_requests = max_requests
        self._target = target
        """The managed firewall read through Panorama; None: Panorama itself."""
        self.requests = 0
        """Requests sent so far (retries not counted: the retry policy bounds those)."""
        self.networks = 0
        """Networks read one by one (0 when `all` was paged)."""
        self.count: int | None = None
        """How many IPs the target said it holds (`all option count`); None before the
        read, or when it gave no readable count."""

    def run(self) -> dict[str, frozenset[str]]:
        """The table: every IP with all its tags.

        Raises:
            AuthError, NonRetryable, Retryable: as `PanoramaClient.registered`.
        """
        count = self.count = self._count()
        if count is None or count < xmlapi.REGISTERED_MAX_START_POINT:
            # The count is a moment's, and may be missing: a table that is (or grows)
            # past what paging reaches is read by networks after all.
            whole = self._read(None)
            if whole is not None:
                return whole
        result: dict[str, frozenset[str]] = {}
        pending = [*_split(_IPV6_ALL), *_split(_IPV4_ALL)]
        while pending:
            network = pending.pop()
            self.networks += 1
            found = self._read(network)
            if found is None:
                pending.extend(_split(network))
                continue
            # The networks are disjoint; merging anyway keeps a device's stray entry from
            # replacing what another network's answer said of the same IP.
            for ip, tags in found.items():
                result[ip] = result.get(ip, frozenset()) | tags
        return result

    def _count(self) -> int | None:
        """How many IPs the target says it holds; None, after a warning, when it gives no
        readable count (an answer without one, or a refusal of `option count`): the read
        never depends on it."""
        try:
            answer = self._send(xmlapi.registered_count_command(), "count")
        except xmlapi.PanosError as error:
            if error.code != xmlapi.CODE_SYNTAX:
                raise
            why = f"it refused `all option count`: {error}"
        else:
            count = xmlapi.registered_count(answer)
            if count is not None:
                return count
            why = "its answer holds no number"
        who = f"Firewall {self._target}" if self._target else "Panorama"
        log_event(
            log,
            "panorama.registered_count_unreadable",
            logging.WARNING,
            target=self._target or "panorama",
            message=(
                f"{who} did not say how many IPs are registered ({why}); reading "
                f"them all in pages of {PAGE_SIZE} instead, and network by network only "
                f"if there are more than {xmlapi.REGISTERED_MAX_START_POINT:,}"
            ),
        )
        return None

    def _read(self, within: xmlapi.Network | None) -> dict[str, frozenset[str]] | None:
        """The entries of `all` or of one network, page by page; None when paging cannot
        reach them all (a network of 100,000 or more, or more than 100,000 in `all`)."""
        found: dict[str, frozenset[str]] = {}
        start = 1
        while True:
            page = self._page(within, start, PAGE_SIZE)
            known = len(found)
            for ip, tags in page:
                found[ip] = found.get(ip, frozenset()) | tags
            if len(page) < PAGE_SIZE:
                return found
            if len(found) == known:
                where = f" in {within}" if within else ""
                raise Retryable(
                    f"registered-ip paging did not advance at start-point {start}{where}"
                )
            # A network that fills its first page may overflow: one entry at the last
            # start-point a device accepts tells. (`all` is paged as far as it reaches.)
            probe = start == 1 and within is not None
            if probe and self._page(within, xmlapi.REGISTERED_MAX_START_POINT, 1):
                return None
            start += len(page)
            if start > xmlapi.REGISTERED_MAX_START_POINT:
                # The next page is out of reach: asking from the last entry read (or the
                # last start-point) to one past it tells whether there is more.
                last = min(start - 1, xmlapi.REGISTERED_MAX_START_POINT)
                wanted = start - last + 1
                return None if len(self._page(within, last, wanted)) >= wanted else found

    def _page(
        self, within: xmlapi.Network | None, start: int, limit: int
    ) -> list[tuple[str, frozenset[str]]]:
        command = xmlapi.registered_ip_command(limit, start, within)
        return xmlapi.registered_page(self._send(command, "page"))

    def _send(self, command: str, what: str) -> ET.Element:
        if self.requests >= self._max_requests:
            raise NonRetryable(
                f"registered-ip: the read needs more than {self._max_requests} requests "
                "(limits.panoramaMaxPages); nothing was changed"
            )
        self.requests += 1
        return self._call({"type": "op", "cmd": command}, f"show registered-ip {what}")


_IPV4_ALL = ipaddress.IPv4Network("0.0.0.0/0")
_IPV6_ALL = ipaddress.IPv6Network("::/0")

_SPLIT_BITS = 4
"""Prefix bits a network gains when it is split: 16 parts."""


def _split(network: xmlapi.Network) -> list[xmlapi.Network]:
    """`network` in 16 parts (fewer near a host address).

    Raises:
        NonRetryable: `network` is a single address, which cannot hold 100,000 IPs: the
            device's answers contradict themselves.
    """
    bits = min(_SPLIT_BITS, network.max_prefixlen - network.prefixlen)
    if bits == 0:
        raise NonRetryable(
            f"registered-ip: the single address {network} answered as holding 100,000 "
            "entries or more; nothing was changed"
        )
    return list(network.subnets(prefixlen_diff=bits))
