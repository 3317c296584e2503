"""Signing in and out, sign-up, and the emailed links."""

from terminus_hub.auth.views import bp

__all__ = ["bp"]
