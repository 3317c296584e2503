"""The SSO settings form: domains, IdP metadata (file or three fields), enforcement."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField
from wtforms import Field
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import ValidationError

from terminus_hub.core.idp_metadata import MAX_METADATA_BYTES
from terminus_hub.core.idp_metadata import decode_metadata
from terminus_hub.core.sso_connections import ConfigurationError
from terminus_hub.core.sso_connections import parse_domains

NEED_ALL_THREE = "Give the entity ID, the single sign-on URL and the certificate together."


class SsoSettingsForm(FlaskForm):
    domains = StringField("Email domains")
    metadata = FileField("Identity provider metadata (XML file)")
    entity_id = StringField("Identity provider entity ID")
    sso_url = StringField("Single sign-on URL (HTTP-Redirect)")
    certificate = TextAreaField("Signing certificate (PEM)")
    enforced = BooleanField("Enforce single sign-on for these domains")

    domain_list: list[str]

    def validate_domains(self, field: Field) -> None:
        """Turn the domains text into a checked list."""
        try:
            self.domain_list = parse_domains(field.data or "")
        except ConfigurationError as exc:
            raise ValidationError(str(exc)) from exc

    def validate_entity_id(self, field: Field) -> None:
        """Ask for all three IdP fields or none of them."""
        given = [bool((f.data or "").strip()) for f in (field, self.sso_url, self.certificate)]
        if any(given) and not all(given):
            raise ValidationError(NEED_ALL_THREE)

    def metadata_xml(self) -> str | None:
        """Return the uploaded metadata text, or None when no file was uploaded."""
        upload = self.metadata.data
        if not upload or not getattr(upload, "filename", ""):
            return None
        return decode_metadata(upload.read(MAX_METADATA_BYTES + 1))
