"""gunicorn settings for the service (used by scripts/serve.sh and the Dockerfile)."""

import os

bind = os.environ.get("IDENTITY_BIND", "127.0.0.1:8000")
# One worker process per core (at least two, so a crashed worker never leaves the instance
# without one): threads carry the waiting on Keycloak, and argon2 releases the GIL. gunicorn's
# "2 x cores + 1" is for sync workers; with threads, more processes than cores only cost CPU
# (measured: a refresh costs the service about a third more CPU at 2 x cores + 1 than at one
# per core, docs/benchmarks.md). In a container whose CPU quota is below the host's cores, set
# IDENTITY_WORKERS to the quota.
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
workers = int(os.environ.get("IDENTITY_WORKERS", max(2, _cores)))
# Threads: a worker waiting on Keycloak serves other requests meanwhile, and (unlike sync
# workers) gthread keeps client connections alive, which the apps and nginx reuse. Twice
# IDENTITY_MAX_IN_FLIGHT: past saturation the extra requests reach the service's admission
# gate (a quick TooManyRequestsException) instead of waiting unseen in gunicorn's queue.
worker_class = "gthread"
threads = int(os.environ.get("IDENTITY_THREADS", 2 * int(os.environ.get("IDENTITY_MAX_IN_FLIGHT", 8))))
timeout = int(os.environ.get("IDENTITY_WORKER_TIMEOUT", 30))
graceful_timeout = 20
# nginx keeps idle connections to the service for less (its upstream keepalive_timeout, 4 s).
keepalive = 5
# Path without the query string (%(U)s): a query can carry a code or a state.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# Our JSON logs go to stderr: send them to the error log file too.
capture_output = True


# Prometheus: every worker writes its samples under one directory that /metrics aggregates.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                     os.path.join(os.environ.get("TMPDIR", "/tmp"), f"identity-metrics-{os.getpid()}"))
os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
