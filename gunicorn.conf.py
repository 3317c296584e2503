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
max_requests = 2000  # recycle workers now and then
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# Request lines are logged without query strings; link tokens live in paths and are single-use.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
