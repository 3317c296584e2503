"""Forms of the signed-in web app."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import Field
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError

from terminus_hub.core.keyring import name_problem
from terminus_hub.core.membership import NAME_INVALID
from terminus_hub.forms import NAME_INVALID as NAME_INVALID_PERSON
from terminus_hub.forms import NAME_REQUIRED
from terminus_hub.forms import EmailMixin
from terminus_hub.forms import NameMixin
from terminus_hub.forms import ResetPasswordForm
from terminus_hub.forms import email_field
from terminus_hub.forms import name_field
from terminus_hub.passwords import password_problem


class ApiKeyCreateForm(FlaskForm):
    name = StringField("Key name")

    def validate_name(self, field: Field) -> None:
        """Apply the same name rule as the API."""
        problem = name_problem(field.data)
        if problem:
            raise ValidationError(problem)


ROLE_CHOICES = {"member": "Member", "admin": "Admin", "owner": "Owner"}


class InviteForm(EmailMixin, FlaskForm):
    email = email_field()
    role = SelectField("Role", choices=ROLE_CHOICES)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class AccountPolicyForm(FlaskForm):
    require_mfa_for_managers = BooleanField("Owners and admins must use a second factor")


class RenameForm(FlaskForm):
    name = StringField("Account name", validators=[DataRequired(NAME_INVALID)])


class InvitationAcceptForm(FlaskForm):
    """Join an account; a person without a user yet also gives a name and a password."""

    name = StringField("Your name")
    password = PasswordField("Choose a password")

    def __init__(
        self,
        *args: object,
        context: tuple[str, ...] = (),
        needs_account: bool = False,
        **kw: object,
    ) -> None:
        super().__init__(*args, **kw)
        self._context = context
        self.needs_account = needs_account

    def validate_name(self, field: Field) -> None:
        """Ask a new person for their name."""
        if self.needs_account and not " ".join((field.data or "").split()):
            raise ValidationError(NAME_REQUIRED)
        if len(field.data or "") > 120 or not (field.data or "").isprintable():
            raise ValidationError(NAME_INVALID_PERSON)

    def validate_password(self, field: Field) -> None:
        """Apply the sign-up password rule to a new person."""
        if not self.needs_account:
            return
        problem = password_problem(field.data or "", self._context)
        if problem:
            raise ValidationError(problem)


CURRENT_PASSWORD_REQUIRED = "Enter your current password."


class PersonNameForm(NameMixin, FlaskForm):
    name = name_field()


class ChangePasswordForm(ResetPasswordForm):
    current_password = PasswordField(
        "Current password", validators=[InputRequired(CURRENT_PASSWORD_REQUIRED)]
    )


class ChangeEmailForm(EmailMixin, FlaskForm):
    email = email_field("New email")
    # Its own id: the password form on the same page has a current_password too.
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired(CURRENT_PASSWORD_REQUIRED)],
        id="email-current-password",
    )
