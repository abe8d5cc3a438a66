"""gunicorn settings for the service (used by scripts/serve.sh and the Dockerfile)."""

import multiprocessing
import os

bind = os.environ.get("IDENTITY_BIND", "127.0.0.1:8000")
# Sign-in spends its time waiting on Keycloak and on password hashing: a few sync
# workers per core, each with its own DB pool and Admin API token.
workers = int(os.environ.get("IDENTITY_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Threads: a worker waiting on Keycloak serves other requests meanwhile, and (unlike sync
# workers) gthread keeps client connections alive, which the apps and nginx reuse. Twice
# IDENTITY_MAX_IN_FLIGHT: past saturation the extra requests reach the service's admission
# gate (a quick TooManyRequestsException) instead of waiting unseen in gunicorn's queue.
worker_class = "gthread"
threads = int(os.environ.get("IDENTITY_THREADS", 2 * int(os.environ.get("IDENTITY_MAX_IN_FLIGHT", 8))))
timeout = int(os.environ.get("IDENTITY_WORKER_TIMEOUT", 30))
graceful_timeout = 20
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
