"""The signed-in web app: the account picker and account pages."""

from terminus_hub.accounts import account_settings_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import audit_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import member_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import mfa_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import passkey_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import session_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import settings_views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts import views  # noqa: F401  (registers its routes on bp)
from terminus_hub.accounts.blueprint import bp

__all__ = ["bp"]
