"""Forms of the signed-in web app."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field
from wtforms import StringField
from wtforms.validators import ValidationError

from terminus_hub.accounts.api_keys import name_problem


class ApiKeyCreateForm(FlaskForm):
    name = StringField("Key name")

    def validate_name(self, field: Field) -> None:
        """Apply the same name rule as the API."""
        problem = name_problem(field.data)
        if problem:
            raise ValidationError(problem)
