"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden by the environment (GUNICORN_CMD_ARGS) or the command line.
Nothing that matters lives in a worker's memory (sessions, lockouts, rate limits, pending SAML
requests and keys are in PostgreSQL and Redis), so any number of workers and machines behave
as one.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")  # behind the TLS-terminating proxy
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
# Request lines are logged without query strings; link tokens live in paths and are single-use.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
