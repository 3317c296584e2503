"""SAML single sign-on: per-account identity providers, domain routing and enforcement."""

from terminus_hub.sso import views  # noqa: F401  (registers its routes on bp)
from terminus_hub.sso.blueprint import bp

__all__ = ["bp"]
