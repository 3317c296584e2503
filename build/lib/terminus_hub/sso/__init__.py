"""SAML single sign-on: per-account identity providers, domain routing and enforcement."""

from terminus_hub.sso.views import bp

__all__ = ["bp"]
