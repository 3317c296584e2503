"""The peer: Flask-Security-Too's token-authenticated route, users in PostgreSQL.

`auth_required("token")` with the `Authentication-Token` header, the datastore and models as
Flask-Security-Too documents them (fsqla_v3), nothing tuned. Runs from bench/.venv-peer:

    BENCH_FST_DATABASE_URL=postgresql+psycopg://… python fst_app.py setup 1000   # prints a token
    BENCH_FST_DATABASE_URL=… gunicorn fst_app:app
"""

from __future__ import annotations

import os
import sys

from flask import Flask
from flask_security import Security
from flask_security import SQLAlchemyUserDatastore
from flask_security import auth_required
from flask_security import current_user
from flask_security import hash_password
from flask_security.models import fsqla_v3 as fsqla
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config.update(
    SECRET_KEY="bench-peer-secret-key-" + "x" * 32,
    SECURITY_PASSWORD_SALT="bench-peer-salt",  # noqa: S106 (a bench app)
    SECURITY_PASSWORD_HASH="bcrypt",  # noqa: S106 (an algorithm name)
    SQLALCHEMY_DATABASE_URI=os.environ.get(
        "BENCH_FST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/fst_bench"
    ),
)
db = SQLAlchemy(app)
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):
    pass


class User(db.Model, fsqla.FsUserMixin):
    pass


security = Security(app, SQLAlchemyUserDatastore(db, User, Role))


@app.get("/api/v1/account")
@auth_required("token")
def account() -> dict[str, str]:
    user = current_user
    return {"id": user.fs_uniquifier, "slug": "bench", "name": user.email, "auth": "token"}


def setup(users: int) -> str:
    """Create the tables and `users` users (one bcrypt hash shared); return user 0's token."""
    with app.app_context():
        db.create_all()
        datastore = security.datastore
        password = hash_password("correct horse battery staple")
        for i in range(users):
            datastore.create_user(email=f"user{i}@peer.example", password=password)
        db.session.commit()
        user = datastore.find_user(email="user0@peer.example")
        return user.get_auth_token()


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"]:
        print(setup(int(sys.argv[2])))
    else:
        sys.exit("usage: fst_app.py setup USERS")
