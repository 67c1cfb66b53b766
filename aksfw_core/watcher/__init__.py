"""`aksfw watch`: watch one cluster's Services and say, at most once per short window, that
something which can change its tags has changed (DESIGN section 3).

- `stream`: the Kubernetes watch protocol (list, watch from a resourceVersion, bookmarks,
  relist on 410 Gone, reconnect with backoff), on `aksfw_core.kube`'s client and errors.
- `changes`: what counts as a change: pure functions of Service objects, read with the
  engine's own parser.
- `publishing`: the debounce window and the publish retries, on an injected clock.
- `timing`: that clock and the watcher's backoff (a loop that outlives outages, not
  `aksfw_core.retry`'s bounded retry of one call).
- `service_watcher`: `ServiceWatcher`, the three joined into the running watcher.

The notice carries no Service data: the app lists the cluster itself, as for any event.
"""

from aksfw_core.watcher.service_watcher import ServiceWatcher

__all__ = ["ServiceWatcher"]
