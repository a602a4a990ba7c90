"""Connection options shared by the Kafka sink and source: brokers, TLS, SASL.

One config model (`KafkaConnectionOptions`, mixed into both components' models)
and one builder (`client_kwargs`) that turns it into the keyword arguments every
aiokafka client takes (producer, consumer, admin). Secrets come from the
environment (`${VAR}` interpolation) or from a file, are held as `SecretStr`,
and are read only here, when the client is built: never logged or printed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.config import Model
from pipeline.errors import StartError
from pipeline.secrets import secret_value
from pipeline.tls import TlsOptions, client_context, refusal
from pipeline.units import Duration
from pipeline.urls import HostPort


class KafkaTlsOptions(TlsOptions):
    """The shared TLS options (pipeline/tls.py), plus `enabled`: Kafka addresses carry no scheme."""

    enabled: bool = Field(default=True, description="Connect over TLS (security protocol SSL / SASL_SSL).")


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
    tls: KafkaTlsOptions | None = Field(
        default=None,
        description="TLS to the brokers (the shared TLS options, see docs/security.md). Unset: plaintext.",
        examples=[{"ca_file": "/etc/kafka/ca.pem"}],
    )
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
        kwargs["ssl_context"] = client_context(options.tls)
    if options.sasl is not None:
        kwargs["sasl_mechanism"] = options.sasl.mechanism
        kwargs["sasl_plain_username"] = options.sasl.username
        kwargs["sasl_plain_password"] = sasl_password(options.sasl)
    return kwargs


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a client error for logs and /ready."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Broker error classes that mean "these credentials are refused" (aiokafka's SASL errors).
_AUTH_ERRORS = ("SaslAuthenticationFailed", "AuthenticationFailedError", "IllegalSaslStateError")


async def diagnose(kwargs: dict[str, Any]) -> StartError | None:
    """Why a client cannot bootstrap, when the reason is permanent (TLS or SASL refused).

    aiokafka's bootstrap reports only "Unable to bootstrap" (the real cause goes
    to its log), so this opens one connection to each bootstrap server itself,
    the same way, and classifies what it raises. None: nothing permanent found
    (a broker down or slow is retried)."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import UnsupportedSaslMechanismError
    from aiokafka.protocol.metadata import MetadataRequest

    servers = [str(s) for s in kwargs["bootstrap_servers"]]
    for server in servers:
        host, _, port = server.rpartition(":")
        conn: Any = None
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host.strip("[]"),
                    int(port),
                    client_id=kwargs["client_id"],
                    request_timeout_ms=kwargs["request_timeout_ms"],
                    ssl_context=kwargs.get("ssl_context"),
                    security_protocol=kwargs["security_protocol"],
                    sasl_mechanism=kwargs.get("sasl_mechanism", "PLAIN"),
                    sasl_plain_username=kwargs.get("sasl_plain_username"),
                    sasl_plain_password=kwargs.get("sasl_plain_password"),
                ),
                kwargs["request_timeout_ms"] / 1000,
            )
            # With TLS 1.3 a refused client certificate shows only on the first read.
            await asyncio.wait_for(conn.send(MetadataRequest[0]([])), kwargs["request_timeout_ms"] / 1000)
        except UnsupportedSaslMechanismError:
            mechanism = kwargs.get("sasl_mechanism")
            return StartError("sasl.mechanism", f"{server}: the broker does not offer SASL mechanism {mechanism}")
        except Exception as exc:
            tls = refusal(exc)
            if tls is not None:
                return StartError(tls[0], f"{server}: {tls[1]}")
            if type(exc).__name__ in _AUTH_ERRORS:
                user = kwargs.get("sasl_plain_username")
                return StartError(
                    "sasl.password",
                    f"{server}: authentication refused for user {user!r} "
                    f"({kwargs.get('sasl_mechanism')}): wrong user name or password",
                )
        finally:
            if conn is not None:
                conn.close()
    return None
