"""Prometheus metrics, one registry per app (so several apps in one process, as in the tests, never collide).

Labels hold only bounded, non-identifying values: outcomes, "person"/"bot", route templates (``/c/{token}``,
never the path), methods from a fixed list and status codes. Never a token, an address or a user agent.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .models import ScanEvent

CONTENT_TYPE = CONTENT_TYPE_LATEST
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
_MAX_CACHED_CHILDREN = 4096  # label sets are bounded anyway (routes x methods x statuses); this bounds the cache
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ScanObserver:
    """What the scan writer reports; this base ignores it (a writer built without metrics)."""

    def committed(self, rows: Sequence[ScanEvent], counted_only: Sequence[ScanEvent], seconds: float) -> None:
        """A batch was committed: ``rows`` as events, ``counted_only`` as per-day counts, in ``seconds``."""

    def shed(self, reason: str, requests: int = 1) -> None:
        """Requests answered 503 because their event was not committed (queue_full, shutting_down, ...)."""


class Metrics(ScanObserver):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.scans = Counter("contactcard_scans_committed", "Hits under /c/ committed as event rows, by outcome "
                             "and whether the visitor is a bot", ["outcome", "visitor"], registry=r)
        self.counted_only = Counter("contactcard_scans_counted_only", "Hits on unknown or malformed links beyond "
                                    "the rate limit, committed as a per-day count instead of a row", ["outcome"],
                                    registry=r)
        self.batch_size = Histogram("contactcard_scan_batch_size", "Events per group commit of the scan writer",
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram("contactcard_scan_commit_seconds", "Time to commit one batch of scan "
                                        "events (to disk, synchronous=FULL)", buckets=_SECONDS_BUCKETS, registry=r)
        self.shed_total = Counter("contactcard_scans_shed", "Scan requests answered 503 because their event was "
                                  "not committed", ["reason"], registry=r)
        self.queue_depth = Gauge("contactcard_scan_queue_depth", "Events waiting for the scan writer", registry=r)
        self.queue_bound = Gauge("contactcard_scan_queue_bound", "The scan queue's capacity: beyond it scans are "
                                 "answered 503", registry=r)
        self._request_children: dict[tuple[str, str, int], Histogram] = {}
        self.requests = Histogram("contactcard_request_duration_seconds", "HTTP requests by route template, "
                                  "method and status", ["route", "method", "status"], buckets=_SECONDS_BUCKETS,
                                  registry=r)

    def watch_queue(self, depth: Callable[[], int], bound: int) -> None:
        self.queue_depth.set_function(depth)
        self.queue_bound.set(bound)

    def committed(self, rows: Sequence[ScanEvent], counted_only: Sequence[ScanEvent], seconds: float) -> None:
        # one increment per distinct label set, not per event: a batch is mostly one or two kinds
        for (outcome, is_bot), n in collections.Counter((e.outcome, e.is_bot) for e in rows).items():
            self.scans.labels(outcome.value, "bot" if is_bot else "person").inc(n)
        for outcome, n in collections.Counter(e.outcome for e in counted_only).items():
            self.counted_only.labels(outcome.value).inc(n)
        self.batch_size.observe(len(rows) + len(counted_only))
        self.commit_seconds.observe(seconds)

    def shed(self, reason: str, requests: int = 1) -> None:
        self.shed_total.labels(reason).inc(requests)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:  # labels() validates and locks on every call: look each label set up once
            child = self.requests.labels(route, method if method in _METHODS else "other", str(status))
            if len(self._request_children) < _MAX_CACHED_CHILDREN:
                self._request_children[key] = child
        child.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
