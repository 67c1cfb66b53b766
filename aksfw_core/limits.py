"""Every timeout, cap and TTL aksfw works within, with the unit in each name: the app's
(`Limits`: the configuration document's `limits` object overrides any of them, camelCase,
same units; the defaults are what a production deployment should run with) and the command
line's own (`CommandLineLimits`). Limits of the outside systems themselves (PAN-OS, Storage,
the Functions host) are facts, not settings: they stay beside the code that speaks to them.
Pure code.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on outside calls (time, bytes, pages) and on how long things are remembered."""

    panorama_connect_timeout_s: float = 5.0
    """Seconds to open a TCP/TLS connection to Panorama."""
    panorama_read_timeout_s: float = 60.0
    """Seconds one read from Panorama may wait for data."""
    panorama_deadline_s: float = 120.0
    """Seconds one whole Panorama request may take, connect to last byte: a server that
    drips bytes cannot stretch it."""
    panorama_max_response_bytes: int = 16 * MIB
    """Bytes of one Panorama answer at most (a full registered-ip page is under 3 MiB)."""
    panorama_max_concurrent_requests: int = 4
    """Requests one process sends to one Panorama at the same time at most; across the
    app, at most this times the Function App's maximum instance count."""
    panorama_max_pages: int = 2000
    """`show object registered-ip` requests one read of the registered IPs may send (its
    count, pages of 500 entries, and probes of networks; retries not counted). A read of
    300,000 IPs takes about 700."""

    kube_connect_timeout_s: float = 5.0
    """Seconds to open a connection to a Kubernetes API server."""
    kube_read_timeout_s: float = 30.0
    """Seconds one read from a Kubernetes API server may wait for data."""
    kube_deadline_s: float = 60.0
    """Seconds one Service list page may take, connect to last byte."""
    kube_max_response_bytes: int = 64 * MIB
    """Bytes of one Service list page at most."""
    kube_page_size: int = 500
    """Services asked for per page."""
    kube_max_pages: int = 1000
    """Pages one Service list may take (a server that keeps handing out pages is stopped)."""
    kube_list_deadline_s: float = 300.0
    """Seconds one whole Service list may take, every page and retry included (a server
    that serves many pages slowly cannot stretch it); a page's request gets no more time
    than is left. Half the Functions host's 10-minute timeout."""
    kube_max_services: int = 50_000
    """Services one list may hold (5 times the 10,000 a Kubernetes cluster is tested
    with): each is kept, reduced to what tags read, until the list ends. The list of Static
    Egress Gateways (`egressTags`) is held to it too, and to `kube_deadline_s` in all."""
    kube_max_list_bytes: int = 32 * MIB
    """Bytes (as compact JSON) of what one Service list keeps: each Service is reduced to
    what tags read (type, name, namespace, labels, `aksfw.io/` annotations, ingress IPs) as
    its page arrives. 10,000 Services with 20 labels each keep about 11 MiB."""

    azure_connect_timeout_s: float = 10.0
    """Seconds to open a connection to Resource Manager, Key Vault or Storage."""
    azure_read_timeout_s: float = 60.0
    """Seconds one read from Resource Manager, Key Vault or Storage may wait for data."""
    arm_max_clusters: int = 10_000
    """Managed clusters one subscription's list may hold (its pages are read until then)."""
    arm_max_pages: int = 20
    """Pages one raw Resource Manager list (the virtual networks of a node resource group,
    for node subnets) may take."""
    arm_max_response_bytes: int = 4 * MIB
    """Bytes of one raw Resource Manager answer (a subnet, a page of virtual networks) at
    most."""

    max_message_bytes: int = 64 * MIB
    """Bytes a queue message or payload blob may unpack to (a bound against gzip bombs)."""
    payload_ttl_s: float = 86_400.0
    """Seconds a shared payload blob is kept: far longer than a message lives in the queue
    (five deliveries, then the poison queue). A message whose payload is gone is poisoned,
    and the next resync queues its snapshot again."""
    payload_cleanup_blobs: int = 1000
    """Payload blobs one timer run deletes at most (older ones go in the next runs)."""
    max_http_body_bytes: int = 64 * 1024
    """Bytes of an HTTP trigger's request body at most."""
    event_max_age_s: float = 86_400.0
    """Seconds an event's own time may lie in the past (Event Grid retries a delivery for
    24 hours); an older time, or one more than `max_version_skew_s` ahead, is not believed:
    the lag is measured from the event's arrival instead."""
    resync_burst_lists: int = 3
    """Kubernetes lists of one cluster that its changes may cause in a row (on any
    instance) before they wait for `resync_refill_s`: the burst of its list budget. A
    change for a cluster with no list queued or in flight is listed at once whatever the
    budget holds (it takes a list from it if there is one); a change during a list asks
    for one more list after it, at once while the budget lasts."""
    resync_refill_s: float = 2.0
    """Seconds the list budget of a cluster takes to earn one list back (its steady rate
    once the burst is spent): a storm of events costs the burst and then one list per this
    many seconds, however many events and instances. Formerly `eventResyncWindowSeconds`,
    still accepted in the configuration document."""
    timer_max_concurrent_messages: int = 8
    """Resync messages the timer sends at the same time at most when it fans out one per
    monitored cluster (2,000 clusters one after the other took about 40 s). The Storage
    client keeps 10 connections per host: more at once would open connections and throw
    them away."""
    apply_lock_wait_s: float = 15.0
    """Seconds an applier waits for another one working on the same (cluster, target)
    before the message goes back to the queue."""
    max_version_skew_s: float = 300.0
    """Seconds a snapshot's version may lie ahead of the applier's clock. A snapshot
    further ahead is refused; a saved state further ahead is not trusted for ordering (the
    next snapshot is compared with Panorama), so a skewed clock or a forged message cannot
    make every later snapshot look older for ever."""

    inventory_ttl_s: float = 60.0
    """Seconds the cluster inventory is reused before Resource Manager is asked again."""
    kubeconfig_ttl_s: float = 600.0
    """Seconds a cluster's credential (kubeconfig) is reused."""
    enqueued_mark_ttl_s: float = 600.0
    """Seconds an identical queued snapshot suppresses a new one."""
    connected_firewalls_ttl_s: float = 60.0
    """Seconds the list of device groups' connected firewalls is reused."""
    connected_firewalls_early_refresh_s: float = 5.0
    """Seconds at least between two early reads of that list for a serial it lacks."""
    audit_interval_s: float = 3600.0
    """Seconds between timer runs that compare with Panorama itself."""
    shared_table_max_age_s: float = 60.0
    """Seconds a target's stored table (read once by one applier for every cluster on that
    target) serves a comparison that is not part of an audit or a repair: a first apply,
    one after a failed or refused write, a race's settlement. An audit uses a table read
    since it began, a repair one read since the target was found to have forgotten."""
    shared_table_wait_s: float = 120.0
    """Seconds an apply waits for another applier's read of the same target's table before
    its message goes back to the queue (a 5,000-IP table takes 11 requests)."""
    shared_table_clock_skew_s: float = 5.0
    """Seconds the app's instances' clocks may disagree at most: a stored table serves a
    cluster only if its read began this long after the cluster's last write on the target
    (else it might not show that write), so a cluster that wrote just before reads again."""
    shared_table_max_bytes: int = 32 * MIB
    """Bytes (as JSON) of aksfw's tags a stored table may hold (every aksfw cluster's tags on
    the target, no other owner's; about 500,000 IP-tag pairs): a larger table is not stored,
    and every apply that compares with that target reads it itself."""
    canary_timeout_s: int = 3600
    """Seconds each target's canary registration lives (PAN-OS takes up to 2,592,000); the
    timer registers it again at each run, so it must be longer than the timer's period. A
    canary gone within it means the target lost its registrations: it is audited at once."""
    canary_deadline_s: float = 60.0
    """Seconds one timer run spends at most checking every target's canary (an uninstall at
    most removing them); a target not reached in time is checked at the next run."""
    unmonitored_grace_s: float = 900.0
    """Seconds a cluster stays out of the inventory before the timer removes its tags."""

    replay_max_messages: int = 200
    """Poisoned messages one replay call reads at most (a request's `max` may ask for
    fewer): with the checks each needs, a call stays well inside an HTTP trigger's time."""
    replay_visibility_timeout_s: float = 300.0
    """Seconds a replay hides the poisoned messages it has read, so a concurrent replay
    cannot move them too; it reads no further page once half of this has passed."""

    kube_watch_timeout_s: float = 300.0
    """Seconds one Service watch request asks the API server to stream (`timeoutSeconds`)
    before the watcher opens the next one; its reads may wait this long plus
    `kube_read_timeout_s`, and the whole request this long plus `kube_deadline_s`."""
    kube_watch_max_event_bytes: int = 4 * MIB
    """Bytes of one watch event (one JSON line) at most."""
    watch_backoff_initial_s: float = 0.5
    """Seconds before the watcher's first reconnect or publish retry after a failure;
    doubles with each further failure in a row (with jitter)."""
    watch_backoff_max_s: float = 30.0
    """Seconds: cap on one wait of the watcher between reconnects or publish retries."""

    mass_removal_fraction: float = 0.5
    """Share (0 to 1) of a cluster's IP-tag pairs on a target that one change may remove
    before it is held back: a resync that would remove more (and at least
    `mass_removal_min_pairs`), or all of them, waits for a second, independent list."""
    mass_removal_min_pairs: int = 10
    """IP-tag pairs a change must remove at least to count as a mass removal (removing all
    of a cluster's pairs always counts), so that a small cluster's churn is never held."""
    mass_removal_confirm_delay_s: float = 60.0
    """Seconds after a held-back mass removal before the confirming resync lists the
    cluster again; only if it finds the same Services is the removal applied."""
    mass_removal_max_confirmations: int = 3
    """Confirming resyncs one hold queues in a row at most while each list disagrees with
    the one before (Services flapping): the chain ends, and the cluster stays held until a
    resync after the hold's window starts a new one."""
    mass_removal_hold_slack_s: float = 60.0
    """Seconds past the confirmation delay during which a hold suppresses the confirmations
    of other resyncs; after it, a resync that still sees the removal confirms it anew (the
    confirmation may have been lost)."""

    uninstall_pause_s: float = 3600.0
    """Seconds an uninstall pauses every resync and snapshot but tombstones, so that
    nothing registers again while `azd down` removes the app (the pause ends by itself if
    the app stays)."""
    credential_refresh_margin_s: float = 300.0
    """Seconds before its expiry at which an Entra token for a cluster's API is replaced."""


@dataclass(frozen=True)
class CommandLineLimits:
    """The command line's own bounds: its calls on the app's API, `aksfw uninstall --wait`,
    and the ceilings of options the configuration does not have (those it shares with the
    configuration are checked by `aksfw_core.config`)."""

    app_connect_timeout_s: float = 10.0
    """Seconds to open a connection to the Function App."""
    app_deadline_s: float = 240.0
    """Seconds one whole request to the Function App may take: Azure's front end ends an
    HTTP trigger after 230."""
    app_max_response_bytes: int = 16 * MIB
    """Bytes of one answer of the Function App at most (a replay report of the largest call
    is far smaller)."""
    uninstall_poll_s: float = 5.0
    """Seconds between two reads of `GET /api/status` while `aksfw uninstall --wait` waits."""
    uninstall_resend_s: float = 30.0
    """Seconds after which a wait that still sees tags, and no snapshot left in the updates
    queue, asks for the uninstall again (a snapshot that raced the first call)."""
    uninstall_max_wait_s: float = 3600.0
    """Seconds `aksfw uninstall --wait` may be given at most."""
    watch_max_debounce_s: float = 300.0
    """Seconds `aksfw watch --debounce-seconds` may be given at most."""
    command_timeout_s: float = 180.0
    """Seconds a command that talks to Panorama, Kubernetes or the app may take in all,
    retries and their waits included, unless `--timeout` says otherwise: longer than a
    300,000-IP read takes on the simulator (13 s) by far, shorter than a hung Panorama
    used to take to fail (about 4 minutes of per-request deadlines and retries)."""
    command_max_timeout_s: float = 3600.0
    """Seconds `--timeout` may be given at most."""


COMMAND_LINE = CommandLineLimits()
"""The bounds the commands run with, read when a command runs (a test may replace it)."""
