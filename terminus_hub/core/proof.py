"""What happens when someone proves they control an email address.

Anyone can sign up an address they do not own and choose its password; the account stays
unconfirmed. When the real owner later proves the address (through an identity provider, an
invitation link or a reset link), that password must not survive: otherwise the person who
pre-registered the address would share the real owner's account.
"""

from __future__ import annotations

from terminus_hub import audit
from terminus_hub import user_sessions
from terminus_hub.models import User
from terminus_hub.models import utcnow


def address_proved(user: User, *, password_set_by_proof: bool) -> None:
    """Confirm the address; for a user who was unconfirmed, first undo what nobody proved.

    A password the proof did not set is discarded and every session of the user ends. A
    confirmed user is left as they are.
    """
    if user.confirmed_at is not None:
        return
    discarded = not password_set_by_proof and user.password_hash is not None
    if discarded:
        user.password_hash = None
    user_sessions.end_all_for(user)
    user.confirmed_at = utcnow()
    audit.record(
        "account.unconfirmed_claim_cleared",
        user=user,
        detail={"password_discarded": discarded},
    )
