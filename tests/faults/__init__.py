"""The faults suite: real servers (gunicorn, PostgreSQL through a proxy, Redis, SMTP), broken."""
