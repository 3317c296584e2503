"""The ceiling: a bare Flask route answering the same small JSON as GET /api/v1/account.

No authentication, no database, no rate limit, no extra headers: what Flask and gunicorn cost
by themselves on this machine. Served by gunicorn exactly like the other apps.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)

ACCOUNT = {"id": "acc_benchbenchbenchben", "slug": "bench", "name": "Bench", "auth": "api_key"}


@app.get("/api/v1/account")
def account() -> dict[str, str]:
    return ACCOUNT
