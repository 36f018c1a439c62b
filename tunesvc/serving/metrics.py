"""Prometheus metrics of a server, per model: requests by status, failures by kind, time
waiting in the queue, time computing and time end to end. One registry per server, so
two servers in one process (as in tests) do not mix their counts."""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               generate_latest)

disable_created_metrics()  # no *_created series: their timestamps are noise to a scraper

# 1 ms .. 10 s: what a CPU model takes, queueing included
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
           1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tunesvc_requests", "Inference requests, by HTTP status",
                                ["model", "status"], registry=self.registry)
        self.failures = Counter("tunesvc_request_failures",
                                "Inference requests not answered with outputs, by reason",
                                ["model", "reason"], registry=self.registry)
        self.queue = Histogram("tunesvc_queue_seconds", "Time a request waited for a replica",
                               ["model"], buckets=BUCKETS, registry=self.registry)
        self.compute = Histogram("tunesvc_compute_seconds", "Time the model computed",
                                 ["model"], buckets=BUCKETS, registry=self.registry)
        self.latency = Histogram("tunesvc_request_seconds",
                                 "Time from request received to response ready",
                                 ["model"], buckets=BUCKETS, registry=self.registry)

    def answered(self, model: str, status: int, reason: str | None = None) -> None:
        self.requests.labels(model, str(status)).inc()
        if reason is not None:
            self.failures.labels(model, reason).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
