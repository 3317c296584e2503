"""The service provider's signing key and certificate: configured, or made once in instance/."""

from __future__ import annotations

import datetime
import os
import shutil

from flask import Flask

XMLSEC_MISSING = (
    "xmlsec1 was not found; SAML single sign-on needs it to sign and verify. "
    "Install Debian's package: apt-get install xmlsec1"
)
XMLSEC_NOT_THERE = (
    "TERMINUS_XMLSEC_BINARY is {value!r}, which is not an executable xmlsec1 "
    "(give its full path, or the folder that holds it)."
)


def init_app(app: Flask) -> None:
    """Find xmlsec1 (or refuse to start) and settle where the SP key and certificate live."""
    app.config["TERMINUS_XMLSEC_BINARY"] = xmlsec_binary(app.config["TERMINUS_XMLSEC_BINARY"])
    if not app.config["TERMINUS_SAML_SP_KEY_FILE"]:
        key = os.path.join(app.instance_path, "saml_sp.key")
        cert = os.path.join(app.instance_path, "saml_sp.crt")
        app.config["TERMINUS_SAML_SP_KEY_FILE"] = key
        app.config["TERMINUS_SAML_SP_CERT_FILE"] = cert


def xmlsec_binary(configured: str | None) -> str:
    """The xmlsec1 to run: the configured file (or the one in the configured folder), else the
    one on PATH. Found without importing pysaml2, which a worker loads only for SSO."""
    if configured:
        found = shutil.which(configured) or shutil.which("xmlsec1", path=configured)
        if found is None:
            raise RuntimeError(XMLSEC_NOT_THERE.format(value=configured))
        return found
    found = shutil.which("xmlsec1")
    if found is None:
        raise RuntimeError(XMLSEC_MISSING)
    return found


def ensure_keypair(key_path: str, cert_path: str) -> None:
    """Make the SP key (mode 0600) and a 10-year self-signed certificate if they are missing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    if os.path.exists(key_path) and os.path.exists(cert_path):
        return
    os.makedirs(os.path.dirname(key_path), exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Terminus Hub SAML SP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another worker made it first
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
