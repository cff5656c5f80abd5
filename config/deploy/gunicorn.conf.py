"""gunicorn behind nginx (config/deploy/nginx.conf.template); `make serve` starts it.

Sync workers: nginx buffers whole requests and responses, so a worker is busy only while the
application runs, and the work is database-bound with short transactions. 2 x CPUs + 1 keeps
the CPUs busy while some workers wait on PostgreSQL; GUNICORN_WORKERS overrides it.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

wsgi_app = "config.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * _cpus + 1))
worker_class = "sync"
# A request that runs longer is a bug or a stuck dependency: kill the worker, nginx answers 502.
timeout = 30
graceful_timeout = 30
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids a herd.
max_requests = 5000
max_requests_jitter = 500
# Only nginx on this host talks to gunicorn; trust its X-Forwarded-* and no one else's.
forwarded_allow_ips = "127.0.0.1,::1"
# nginx writes the access log, with the request id.
accesslog = None
errorlog = "-"
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    # Metrics of a dead worker are merged into the totals, not lost, nor double-counted.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
