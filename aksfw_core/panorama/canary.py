"""The canary: one registration per (aksfw environment, target) whose absence says that the
target lost its runtime state (a reboot, an HA failover, `debug object registered-ip clear
all`). Pure code: who the canary is, from the environment's identity.

- Its address lies in `100::/64`, the IPv6 discard-only prefix (RFC 6666): traffic to it is
  dropped by design, so registering it tags nothing that can send or receive. (TEST-NET-1,
  192.0.2.0/24, is documentation space that labs and samples use for real entries.) The
  interface identifier comes from the environment's identity, so two environments on one
  Panorama register two addresses and a `show object registered-ip ip <canary>` answers
  with one entry.
- Its tag is `aksfw.canary.<16 hex digits of the same identity>`: no cluster owns it (a
  cluster owns `aks.<cluster>.…` and `aks_<selector>.<cluster>.…`), so no cluster's audit,
  tombstone or uninstall removes it, and no DAG filter written for aksfw's tags
  (`'aks.prod1.web'`) matches it by accident.
- It is registered `persistent="0"` with a timeout (`xmlapi.canary_command`), so a reboot
  drops it while the persistent registrations stay, and a canary nobody refreshes any more
  (an app deleted without its uninstall) expires by itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from aksfw_core.rules.tags import MAX_TAG_TIMEOUT_S

CANARY_TAG_PREFIX = "aksfw.canary."
"""What every canary's tag starts with (and no cluster's does)."""
CANARY_NETWORK = ipaddress.IPv6Network("100::/64")
"""RFC 6666's discard-only prefix: where every canary's address lies."""


@dataclass(frozen=True)
class Canary:
    """One environment's canary registration."""

    ip: str
    """An address in `CANARY_NETWORK`."""
    tag: str
    """`aksfw.canary.<token>`."""


def canary_for(identity: str) -> Canary:
    """The canary of the environment `identity` names (a stable, non-secret name of the
    app's own storage: the same for every instance and deployment of one environment,
    another for another environment)."""
    digest = hashlib.sha256(identity.strip().casefold().encode()).hexdigest()
    interface = int(digest[16:32], 16) or 1  # never the network's own address
    address = CANARY_NETWORK.network_address + interface
    return Canary(str(address), CANARY_TAG_PREFIX + digest[:16])


def is_canary_tag(tag: str) -> bool:
    """Whether a tag is some environment's canary (never a cluster's tag)."""
    return tag.startswith(CANARY_TAG_PREFIX)


def canary_timeout(seconds: float) -> int:
    """The timeout a canary registers with: `seconds` in whole seconds, within what PAN-OS
    takes for a tag (1 to 2,592,000, 30 days)."""
    return max(1, min(int(seconds), MAX_TAG_TIMEOUT_S))
