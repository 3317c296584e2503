"""Forms of the signed-in web app."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import Field
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput
from wtforms.widgets import ListWidget

from terminus_hub.core import keyring
from terminus_hub.core.membership import NAME_INVALID
from terminus_hub.forms import NAME_INVALID as NAME_INVALID_PERSON
from terminus_hub.forms import NAME_REQUIRED
from terminus_hub.forms import EmailMixin
from terminus_hub.forms import NameMixin
from terminus_hub.forms import ResetPasswordForm
from terminus_hub.forms import email_field
from terminus_hub.forms import name_field
from terminus_hub.passwords import password_problem

EXPIRY_CHOICES = {
    "": "Never",
    "30": "In 30 days",
    "90": "In 90 days",
    "180": "In 180 days",
    "366": "In a year",
}
GRACE_CHOICES = {
    "0": "Now",
    "1": "In an hour",
    "24": "In 24 hours",
    "72": "In 3 days",
    "168": "In 7 days",
}


class ApiKeyCreateForm(FlaskForm):
    name = StringField("Key name")
    scopes = SelectMultipleField(
        "What it may do",
        choices=keyring.SCOPE_LABELS,
        default=list(keyring.SCOPES),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,
    )
    expires_in_days = SelectField("Expires", choices=EXPIRY_CHOICES, default="")

    def validate_name(self, field: Field) -> None:
        """Apply the same name rule as the API."""
        problem = keyring.name_problem(field.data)
        if problem:
            raise ValidationError(problem)

    def validate_scopes(self, field: Field) -> None:
        """Apply the same scope rule as the API."""
        problem = keyring.scopes_problem(list(field.data or []))
        if problem:
            raise ValidationError(problem)

    def expiry_days(self) -> int | None:
        """The chosen lifetime in days, or None for never."""
        return int(self.expires_in_days.data) if self.expires_in_days.data else None


class ApiKeyRollForm(FlaskForm):
    expires_in_hours = SelectField("The old key stops working", choices=GRACE_CHOICES, default="24")


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
