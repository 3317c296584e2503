"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden by the environment (GUNICORN_CMD_ARGS) or the command line.
Nothing that matters lives in a worker's memory (sessions, lockouts, rate limits, pending SAML
requests and keys are in PostgreSQL and Redis), so any number of workers and machines behave
as one.
"""

import gc
import multiprocessing
import os
import re
import shutil
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")  # behind the TLS-terminating proxy
# Gunicorn's control socket (for gunicornc) defaults to one path per user, which a second
# instance on the host would take over: each bind address gets its own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or os.path.join(
    os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.gunicorn"),
    "terminus-hub-" + re.sub(r"[^A-Za-z0-9.-]+", "_", bind) + ".ctl",
)
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30  # a worker stuck longer than this is replaced
graceful_timeout = 20
keepalive = 5
# The app is imported once, in the master, and forked into every worker: importing it (pysaml2
# builds its XML schemas at import) costs seconds of CPU, which each worker would otherwise pay
# again at every recycle. Connections to PostgreSQL and Redis are opened lazily, in the
# workers, so none is shared across the fork. New code needs a restart (not a HUP) to load.
preload_app = True
# Recycle workers now and then (a hedge against slow leaks), not every second or two: a busy
# worker serves thousands of API calls a second, and a fresh one starts with cold caches.
max_requests = 20000
max_requests_jitter = 2000
accesslog = "-"
errorlog = "-"
# %(U)s is the path as sent (still percent-encoded, so %0a cannot start a forged line), without
# its query string and with emailed links' tokens replaced by [redacted]; the user agent is
# escaped too. Request-line, query, referrer and header atoms log "-" (terminus_hub/access_log.py).
logger_class = "terminus_hub.access_log.AccessLog"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus metrics (/metrics, when TERMINUS_METRICS_TOKEN is set): each worker counts in its
# own files here and a scrape adds them up. One folder per master, made before the app is
# imported (preload_app), emptied of a dead worker's gauges and removed at shutdown.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="terminus-hub-metrics-")


def pre_fork(server, worker):
    # What the master imported stays in pages shared with the workers only while nothing
    # writes to them; a garbage collection in a worker walks (and so copies) every tracked
    # object. Frozen, they are out of the collector's sight.
    gc.freeze()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(folder).startswith("terminus-hub-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)
