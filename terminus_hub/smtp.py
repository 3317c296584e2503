"""Flask-Mail with a bounded SMTP connect and conversation time."""

from __future__ import annotations

import smtplib

import flask_mail
from flask import current_app


class _Connection(flask_mail.Connection):
    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        """Open the SMTP connection with MAIL_TIMEOUT, which Flask-Mail does not pass on."""
        state = self.mail
        timeout = current_app.config["MAIL_TIMEOUT"]
        host: smtplib.SMTP | smtplib.SMTP_SSL
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=timeout)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=timeout)
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


class Mail(flask_mail.Mail):
    """Flask-Mail whose connections time out after MAIL_TIMEOUT seconds."""

    def connect(self) -> _Connection:
        """Open a connection to the mail host that honours MAIL_TIMEOUT."""
        return _Connection(current_app.extensions["mail"])
