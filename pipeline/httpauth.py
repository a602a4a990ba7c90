"""HTTP authentication options shared by HTTP destinations: basic auth or a bearer token.

One model (`HttpAuthOptions`, mixed into the Elasticsearch sink's and the
webhook targets' models) with the same keys everywhere: `username` with
`password` / `password_file`, or `bearer_token` / `bearer_token_file`.
Secrets are `SecretStr` (normally `${ENV}`) or files read through
pipeline/secrets.py, at each call of `authorization`, so a rotated mounted
secret is picked up without a restart.
"""

from __future__ import annotations

import base64
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from pipeline.config import Model
from pipeline.secrets import secret_value


class HttpAuthOptions(Model):
    username: str | None = Field(
        default=None, description="Basic auth user (with password or password_file).", examples=["pipeline"]
    )
    password: SecretStr | None = Field(default=None, description="Basic auth password.", examples=["${HTTP_PASSWORD}"])
    password_file: Path | None = Field(
        default=None,
        description="File holding the basic auth password (trailing newline stripped).",
        examples=["/run/secrets/http-password"],
    )
    bearer_token: SecretStr | None = Field(
        default=None, description="Bearer token: sent as `Authorization: Bearer <token>`.", examples=["${HTTP_TOKEN}"]
    )
    bearer_token_file: Path | None = Field(
        default=None,
        description="File holding the bearer token (read at each use: a rotated secret is picked up).",
        examples=["/run/secrets/http-token"],
    )

    @model_validator(mode="after")
    def _one_scheme(self) -> HttpAuthOptions:
        for a, b in (("password", "password_file"), ("bearer_token", "bearer_token_file")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ValueError(f"set {a} or {b}, not both")
        has_password = self.password is not None or self.password_file is not None
        if has_password != bool(self.username):
            raise ValueError("basic authentication needs both username and password (or password_file)")
        if has_password and (self.bearer_token is not None or self.bearer_token_file is not None):
            raise ValueError("choose one authentication: basic / bearer_token")
        return self

    def auth_schemes(self) -> list[str]:
        """The schemes configured (at most one once validated): `basic`, `bearer_token`."""
        schemes = []
        if self.username:
            schemes.append("basic")
        if self.bearer_token is not None or self.bearer_token_file is not None:
            schemes.append("bearer_token")
        return schemes


def basic_credentials(options: HttpAuthOptions) -> tuple[str, str] | None:
    """(user, password) of basic auth, or None; ConfigError naming the key when a file is unreadable."""
    password = secret_value(options.password, options.password_file, "password")
    if options.username and password is not None:
        return options.username, password
    return None


def bearer_token(options: HttpAuthOptions) -> str | None:
    return secret_value(options.bearer_token, options.bearer_token_file, "bearer_token")


def authorization(options: HttpAuthOptions) -> str | None:
    """The `Authorization` header value, or None when no authentication is configured."""
    basic = basic_credentials(options)
    if basic is not None:
        return "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    token = bearer_token(options)
    return f"Bearer {token}" if token is not None else None
