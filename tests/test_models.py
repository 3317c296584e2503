"""What the schema guarantees: canonical unique emails, opaque ids, aware UTC times."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import User
from tests import factories


def test_emails_are_unique(app):
    factories.make_user(app, email="dup@example.com")
    with pytest.raises(IntegrityError), app.app_context():
        db.session.add(User(email="dup@example.com", name="", password_hash=None))
        db.session.commit()


def test_public_ids_are_opaque_and_not_sequential(app):
    first = factories.make_person(app)
    second = factories.make_person(app)
    with app.app_context():
        ids = [a.id for a in db.session.scalars(select(Account))]
    assert all(i.startswith("acc_") and len(i) == 20 for i in ids)
    assert first.id.startswith("usr_") and first.id != second.id


def test_times_come_back_timezone_aware(app, user):
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.created_at.tzinfo is not None
        assert row.created_at.utcoffset() == UTC.utcoffset(None)


def test_deleting_an_account_removes_its_memberships_and_workspaces(app, user):
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        db.session.delete(account)
        db.session.commit()
        assert db.session.get(User, user.id).memberships == []
