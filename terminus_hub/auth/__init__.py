"""Signing in and out, sign-up, and the emailed links."""

from terminus_hub.auth import mfa_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.auth import passkey_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.auth import reauth_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.auth import recovery_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.auth import views  # noqa: F401  (registers its routes on bp)
from terminus_hub.auth.blueprint import bp

__all__ = ["bp"]
