"""Connection options shared by the Kafka sink and source: brokers, TLS, SASL.

One config model (`KafkaConnectionOptions`, mixed into both components' models)
and one builder (`client_kwargs`) that turns it into the keyword arguments every
aiokafka client takes (producer, consumer, admin). Secrets come from the
environment (`${VAR}` interpolation) or from a file, are held as `SecretStr`,
and are read only here, when the client is built: never logged or printed.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.config import Model
from pipeline.errors import ConfigError
from pipeline.secrets import secret_value
from pipeline.units import Duration
from pipeline.urls import HostPort


class TlsOptions(Model):
    enabled: bool = Field(default=True, description="Connect over TLS (security protocol SSL / SASL_SSL).")
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates. Unset: the system trust store.",
        examples=["/etc/kafka/ca.pem"],
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS.", examples=["/etc/kafka/client.pem"]
    )
    key_file: Path | None = Field(
        default=None, description="Private key (PEM) of `cert_file`.", examples=["/etc/kafka/client.key"]
    )
    key_password: SecretStr | None = Field(default=None, description="Password of an encrypted `key_file`.")
    verify: bool = Field(
        default=True,
        description="Verify the brokers' certificates and host names. "
        "false is for tests only: it gives up protection against a man in the middle.",
    )

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsOptions:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class SaslOptions(Model):
    mechanism: SaslMechanism = Field(default="PLAIN", description="SASL mechanism.", examples=["SCRAM-SHA-512"])
    username: str = Field(min_length=1, description="SASL user name.", examples=["pipeline"])
    password: SecretStr | None = Field(
        default=None,
        description="SASL password; use `${ENV_VAR}` interpolation, or `password_file`.",
        examples=["${KAFKA_PASSWORD}"],
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the SASL password (trailing newline stripped), e.g. a mounted Kubernetes secret.",
        examples=["/run/secrets/kafka-password"],
    )

    @model_validator(mode="after")
    def _one_password(self) -> SaslOptions:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of password or password_file")
        return self


class KafkaConnectionOptions(Model):
    """Mixed into the sink's and the source's config models."""

    bootstrap_servers: list[HostPort] = Field(
        min_length=1,
        description="Brokers to bootstrap from: a list, or one comma-separated string.",
        examples=[["kafka-0:9092", "kafka-1:9092"], "${KAFKA_BROKERS:-localhost:9092}"],
    )
    client_id: str | None = Field(
        default=None, description="Client id sent to the brokers (quotas, logs). Default: `pipeline-<component name>`."
    )
    request_timeout: Duration = Field(
        default=30.0, gt=0, description="Timeout of one request to a broker.", examples=["30s"]
    )
    tls: TlsOptions | None = Field(default=None, description="TLS to the brokers. Unset: plaintext.")
    sasl: SaslOptions | None = Field(default=None, description="SASL authentication. Unset: none.")

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def security_protocol(options: KafkaConnectionOptions) -> str:
    tls = options.tls is not None and options.tls.enabled
    if options.sasl is not None:
        return "SASL_SSL" if tls else "SASL_PLAINTEXT"
    return "SSL" if tls else "PLAINTEXT"


def ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """Build the TLS context; raise ConfigError naming the key whose file is unusable."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"tls.ca_file: cannot load {tls.ca_file}: {exc}"]) from None
    if tls.cert_file is not None:
        password = tls.key_password.get_secret_value() if tls.key_password else None
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None, password)
        except (OSError, ssl.SSLError) as exc:
            # The message names files, never the password.
            raise ConfigError(
                [f"tls.cert_file: cannot load {tls.cert_file} / {tls.key_file}: {type(exc).__name__}"]
            ) from None
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def sasl_password(sasl: SaslOptions) -> str:
    password = secret_value(sasl.password, sasl.password_file, "sasl.password")
    assert password is not None  # the model requires one of the two
    return password


def client_kwargs(options: KafkaConnectionOptions, component: str) -> dict[str, Any]:
    """Keyword arguments common to AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient.

    Raises ConfigError (keys relative to the component) when a TLS or password file is unusable.
    """
    kwargs: dict[str, Any] = {
        "bootstrap_servers": list(options.bootstrap_servers),
        "client_id": options.client_id or f"pipeline-{component}",
        "request_timeout_ms": int(options.request_timeout * 1000),
        "security_protocol": security_protocol(options),
    }
    if options.tls is not None and options.tls.enabled:
        kwargs["ssl_context"] = ssl_context(options.tls)
    if options.sasl is not None:
        kwargs["sasl_mechanism"] = options.sasl.mechanism
        kwargs["sasl_plain_username"] = options.sasl.username
        kwargs["sasl_plain_password"] = sasl_password(options.sasl)
    return kwargs


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a client error for logs and /ready."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
