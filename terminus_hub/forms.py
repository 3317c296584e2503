"""Sign-in, sign-up and link forms: field rules and messages only."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms import Field
from wtforms import HiddenField
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from terminus_hub.addresses import INVALID_EMAIL
from terminus_hub.addresses import InvalidEmail
from terminus_hub.addresses import canonical_email
from terminus_hub.passwords import context_words
from terminus_hub.passwords import password_problem

EMAIL_REQUIRED = "Enter your email address."
PASSWORD_REQUIRED = "Enter your password."
NAME_REQUIRED = "Enter your name."
NAME_INVALID = "Use letters, spaces and punctuation only, up to 120 characters."


def strip_text(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class CanonicalEmailField(EmailField):
    """An email field that keeps the canonical form of what was typed once it validates."""

    canonical: str = ""


def email_field(label: str = "Email") -> CanonicalEmailField:
    return CanonicalEmailField(
        label,
        filters=[strip_text],
        validators=[DataRequired(EMAIL_REQUIRED), Length(max=254, message=INVALID_EMAIL)],
    )


class EmailMixin:
    email: CanonicalEmailField

    def validate_email(self, field: CanonicalEmailField) -> None:
        """Refuse text that is not an email address and keep the canonical form."""
        try:
            field.canonical = canonical_email(field.data or "")
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from exc


class EmailForm(EmailMixin, FlaskForm):
    email = email_field()
    next = HiddenField()


class PasswordSignInForm(FlaskForm):
    # The email is not validated here: every failure must read "Incorrect email or password."
    email = email_field()
    password = PasswordField("Password", validators=[InputRequired(PASSWORD_REQUIRED)])
    next = HiddenField()


class NameMixin:
    def validate_name(self, field: Field) -> None:
        """Keep names to one printable line."""
        field.data = " ".join((field.data or "").split())
        if not field.data:
            raise ValidationError(NAME_REQUIRED)
        if len(field.data) > 120 or not field.data.isprintable():
            raise ValidationError(NAME_INVALID)


def name_field() -> StringField:
    return StringField("Your name", filters=[strip_text], validators=[DataRequired(NAME_REQUIRED)])


class SignUpForm(NameMixin, EmailMixin, FlaskForm):
    name = name_field()
    email = email_field()
    password = PasswordField("Password", validators=[InputRequired(PASSWORD_REQUIRED)])

    def validate_password(self, field: Field) -> None:
        """Refuse short, overlong and easily guessed passwords, saying why."""
        problem = password_problem(
            field.data, context_words(self.email.data or "", self.name.data or "")
        )
        if problem:
            raise ValidationError(problem)


class ResendForm(EmailMixin, FlaskForm):
    email = email_field()


class ForgotPasswordForm(EmailMixin, FlaskForm):
    email = email_field()


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[InputRequired(PASSWORD_REQUIRED)])

    def __init__(self, *args: object, context: tuple[str, ...] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._context = context

    def validate_password(self, field: Field) -> None:
        """Apply the same password rule as sign-up, with the person's own words as context."""
        problem = password_problem(field.data, self._context)
        if problem:
            raise ValidationError(problem)


class ReauthForm(FlaskForm):
    password = PasswordField("Password", validators=[InputRequired(PASSWORD_REQUIRED)])
    next = HiddenField()


CODE_REQUIRED = "Enter the code from your authenticator app."


class CodeForm(FlaskForm):
    """One code: from an authenticator app (or, where the page says so, a recovery code)."""

    code = StringField("Code", validators=[InputRequired(CODE_REQUIRED)])
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A form with only its CSRF token, for one-button actions."""
