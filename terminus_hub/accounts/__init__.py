"""The signed-in web app: the account picker and account pages."""

from terminus_hub.accounts.views import bp

__all__ = ["bp"]
