"""TLS options shared by every component (client and server side), and the one SSLContext builder.

`TlsOptions` is the one model: Kafka, Elasticsearch, ClickHouse, the webhook
targets and the HTTP API all take it under the key `tls`, with the same keys
(`ca_file`, `cert_file`, `key_file`, `key_password`, `key_password_file`,
`verify`, `server_name`). `client_context` turns it into an `ssl.SSLContext`
that every client library accepts (aiokafka, aiohttp, the Elasticsearch client,
urllib3 under clickhouse-connect); `server_context` does the same for the API.

Verification is on unless `verify: false`, and then `warn_if_unverified` says so
loudly at start. Host names are checked for IP addresses as well as names (some
clients skip the check for IPs when left to themselves). `server_name` makes
the client expect (and send as SNI) another name than the one it connects to.

`refusal` tells a permanent TLS refusal (an untrusted or mismatched
certificate, a server that demands a client certificate, a plaintext port)
apart from a passing network failure, so components can raise StartError for
the first and retry the second.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator

from pipeline.errors import ConfigError
from pipeline.model import Model
from pipeline.secrets import secret_value


class TlsOptions(Model):
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) to trust. Client side: the CAs that signed the server's certificate "
        "(unset: the system trust store). Server side (the API): the CAs whose client certificates are required "
        "(unset: no client certificate asked for).",
        examples=["/etc/pipeline/tls/ca.pem"],
    )
    cert_file: Path | None = Field(
        default=None,
        description="Certificate chain (PEM). Client side: presented for mutual TLS. Server side: the API's "
        "certificate (required there).",
        examples=["/etc/pipeline/tls/client.pem"],
    )
    key_file: Path | None = Field(
        default=None,
        description="Private key (PEM) of `cert_file`; unset when `cert_file` holds the key too.",
        examples=["/etc/pipeline/tls/client.key"],
    )
    key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted key.", examples=["${TLS_KEY_PASSWORD}"]
    )
    key_password_file: Path | None = Field(
        default=None,
        description="File holding the key's password (trailing newline stripped).",
        examples=["/run/secrets/tls-key-password"],
    )
    verify: bool = Field(
        default=True,
        description="Verify the server's certificate chain and host name. `false` gives up all protection "
        "against a man in the middle (tests only); it is logged as a warning at every start.",
    )
    server_name: str | None = Field(
        default=None,
        description="Host name the server's certificate must carry (also sent as SNI), when it differs from "
        "the address connected to (e.g. connecting by IP to a certificate issued for a name).",
        examples=["kafka.internal.example.com"],
    )

    @model_validator(mode="after")
    def _consistent(self) -> TlsOptions:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        has_password = self.key_password is not None or self.key_password_file is not None
        if self.key_password is not None and self.key_password_file is not None:
            raise ValueError("set key_password or key_password_file, not both")
        if has_password and self.cert_file is None:
            raise ValueError("key_password needs cert_file (and key_file)")
        return self


class _NamedContext(ssl.SSLContext):
    """A client context that checks (and sends as SNI) `expected_name` instead of the dialled host.

    asyncio (and uvloop) call `wrap_bio`, urllib3 calls `wrap_socket`: both are
    covered, so the override works under every client library we use."""

    expected_name: str = ""

    def wrap_socket(  # type: ignore[override]
        self, sock: Any, server_side: bool = False, server_hostname: str | None = None, **kwargs: Any
    ) -> Any:
        name = server_hostname if server_side else self.expected_name
        return super().wrap_socket(sock, server_side=server_side, server_hostname=name, **kwargs)

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: Any,
        outgoing: Any,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: Any = None,
    ) -> Any:
        name = server_hostname if server_side else self.expected_name
        return super().wrap_bio(incoming, outgoing, server_side, name, session)


def _load_chain(context: ssl.SSLContext, tls: TlsOptions, key: str) -> None:
    if tls.cert_file is None:
        return
    password = secret_value(tls.key_password, tls.key_password_file, f"{key}.key_password")
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None, password)
    except (OSError, ssl.SSLError) as exc:
        # Names the files, never the password.
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(
            [f"{key}.cert_file: cannot load {tls.cert_file}{f' / {tls.key_file}' if tls.key_file else ''}: {reason}"]
        ) from None


def client_context(tls: TlsOptions, key: str = "tls") -> ssl.SSLContext:
    """The client-side SSLContext; ConfigError naming `key`.X when a file is unusable."""
    context: ssl.SSLContext = (
        _NamedContext(ssl.PROTOCOL_TLS_CLIENT) if tls.server_name else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    if isinstance(context, _NamedContext):
        context.expected_name = tls.server_name or ""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if tls.ca_file is not None:
            context.load_verify_locations(cafile=str(tls.ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError([f"{key}.ca_file: cannot load {tls.ca_file}: {reason}"]) from None
    _load_chain(context, tls, key)
    if tls.verify:
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def server_context(tls: TlsOptions, key: str = "tls") -> ssl.SSLContext:
    """The server-side SSLContext: our certificate; client certificates required when `ca_file` is set."""
    if tls.cert_file is None:
        raise ConfigError([f"{key}.cert_file: a server needs its certificate (and key_file)"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, tls, key)
    if tls.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(tls.ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigError([f"{key}.ca_file: cannot load {tls.ca_file}: {reason}"]) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def warn_if_unverified(logger: logging.Logger | logging.LoggerAdapter[Any], tls: TlsOptions | None, where: str) -> None:
    """The loud start-time warning of `verify: false`."""
    if tls is not None and not tls.verify:
        logger.warning(
            "TLS certificate verification is OFF (tls.verify: false): anyone on the network path can "
            "read and alter this traffic, credentials included",
            extra={"to": where},
        )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        nested = [
            getattr(current, name, None)
            for name in ("os_error", "certificate_error", "errors")  # aiohttp and urllib3 keep the cause here
        ]
        current = current.__cause__ or current.__context__
        for item in nested:
            if isinstance(item, BaseException) and item not in seen:
                seen.append(item)
    return seen


# OpenSSL reasons that mean "this will not work until someone changes a certificate or the config".
_REFUSED_REASONS = {
    "WRONG_VERSION_NUMBER": "the server did not answer TLS (a plaintext port?)",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate (tls.cert_file)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server refused the handshake: it requires a valid client certificate "
    "(tls.cert_file) signed by a CA it trusts",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the CA of our client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the TLS handshake was refused (no common cipher or protocol)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server does not support TLS 1.2 or newer",
}


def refusal(exc: BaseException) -> tuple[str, str] | None:
    """`(key, message)` when `exc` (or its cause) is a permanent TLS refusal; None otherwise.

    `key` is the option to look at, relative to the component (`tls`, `tls.ca_file`, ...)."""
    for item in _chain(exc):
        # aiohttp's certificate error subclasses SSLCertVerificationError but keeps the real one inside.
        item = getattr(item, "certificate_error", None) or item
        if isinstance(item, ssl.SSLCertVerificationError):
            detail = getattr(item, "verify_message", None) or getattr(item, "reason", None) or str(item)
            if "mismatch" in detail.lower():
                return "tls.server_name", (
                    f"the server's certificate does not match the host name: {detail} "
                    "(connect by a name the certificate carries, or set tls.server_name)"
                )
            return "tls.ca_file", f"the server's certificate is not trusted: {detail}"
        if isinstance(item, ssl.SSLError):
            reason = str(item.reason or "")
            if reason in _REFUSED_REASONS:
                key = "tls.cert_file" if "client certificate" in _REFUSED_REASONS[reason] else "tls"
                return key, f"{_REFUSED_REASONS[reason]} ({reason.lower()})"
    return None
