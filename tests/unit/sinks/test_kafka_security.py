"""pipeline/kafka_common.py: TLS and SASL options -> aiokafka client arguments; secrets stay secret."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.config import parse_config
from pipeline.errors import ConfigError
from pipeline.kafka_common import KafkaConnectionOptions, client_kwargs

SECRET = "s3cr3t-Pa55"


def options(**body: Any) -> KafkaConnectionOptions:
    return KafkaConnectionOptions.model_validate({"bootstrap_servers": "k:9093", **body})


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return cert, key


class TestSecurityProtocol:
    @pytest.mark.parametrize(("body", "protocol"), [
        pytest.param({}, "PLAINTEXT", id="plain"),
        pytest.param({"tls": {}}, "SSL", id="tls"),
        pytest.param({"tls": {"enabled": False}}, "PLAINTEXT", id="tls-disabled"),
        pytest.param({"sasl": {"username": "u", "password": "p"}}, "SASL_PLAINTEXT", id="sasl"),
        pytest.param({"tls": {}, "sasl": {"username": "u", "password": "p"}}, "SASL_SSL", id="sasl-tls"),
    ])
    def test_protocol_follows_the_options(self, body: dict[str, Any], protocol: str) -> None:
        assert client_kwargs(options(**body), "c")["security_protocol"] == protocol

    def test_client_id_and_timeout(self) -> None:
        kwargs = client_kwargs(options(request_timeout="5s"), "agent-kafka")
        assert kwargs["client_id"] == "pipeline-agent-kafka" and kwargs["request_timeout_ms"] == 5000
        assert kwargs["bootstrap_servers"] == ["k:9093"]


class TestSasl:
    @pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    def test_password_from_config(self, mechanism: str) -> None:
        kwargs = client_kwargs(options(sasl={"mechanism": mechanism, "username": "u", "password": SECRET}), "c")
        assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
            mechanism, "u", SECRET)

    def test_password_from_file_strips_the_newline(self, tmp_path: Path) -> None:
        (tmp_path / "pw").write_text(SECRET + "\n")
        kwargs = client_kwargs(options(sasl={"username": "u", "password_file": str(tmp_path / "pw")}), "c")
        assert kwargs["sasl_plain_password"] == SECRET

    def test_unreadable_password_file_names_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"sasl\.password_file: cannot read"):
            client_kwargs(options(sasl={"username": "u", "password_file": str(tmp_path / "nope")}), "c")

    @pytest.mark.parametrize("body", [
        pytest.param({"username": "u"}, id="none"),
        pytest.param({"username": "u", "password": "p", "password_file": "/x"}, id="both"),
    ])
    def test_exactly_one_password_source(self, body: dict[str, Any]) -> None:
        with pytest.raises(ValidationError, match="exactly one of password or password_file"):
            options(sasl=body)

    def test_unknown_mechanism(self) -> None:
        with pytest.raises(ValidationError, match="mechanism"):
            options(sasl={"mechanism": "GSSAPI", "username": "u", "password": "p"})

    def test_password_never_shows_in_the_model(self) -> None:
        opts = options(sasl={"username": "u", "password": SECRET})
        assert SECRET not in repr(opts) and SECRET not in str(opts.model_dump())

    def test_password_from_env_is_not_printed_in_config_errors(self) -> None:
        raw = {"sources": {"k": {"type": "kafka", "bootstrap_servers": "k:1", "group_id": "g", "topics": ["t"],
                                 "sasl": {"username": "u", "password": "${KAFKA_PW}", "bogus": 1}}},
               "sinks": {"out": {"type": "blackhole", "inputs": ["k"]}}}
        with pytest.raises(ConfigError) as err:
            parse_config(raw, "p.yaml", {"KAFKA_PW": SECRET})
        assert "sources.k.sasl.bogus: unknown key" in str(err.value)
        assert SECRET not in str(err.value)


class TestTls:
    def test_verify_false_disables_checks(self) -> None:
        context = client_kwargs(options(tls={"verify": False}), "c")["ssl_context"]
        assert context.verify_mode == ssl.CERT_NONE and context.check_hostname is False

    def test_default_verifies(self, cert_pair: tuple[Path, Path]) -> None:
        cert, _ = cert_pair
        context = client_kwargs(options(tls={"ca_file": str(cert)}), "c")["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True

    def test_client_certificate_loads(self, cert_pair: tuple[Path, Path]) -> None:
        cert, key = cert_pair
        client_kwargs(options(tls={"ca_file": str(cert), "cert_file": str(cert), "key_file": str(key)}), "c")

    def test_missing_ca_file_names_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"tls\.ca_file: cannot load"):
            client_kwargs(options(tls={"ca_file": str(tmp_path / "missing.pem")}), "c")

    def test_bad_key_names_the_key_and_not_the_password(self, cert_pair: tuple[Path, Path], tmp_path: Path) -> None:
        cert, _ = cert_pair
        bad = tmp_path / "bad.key"
        bad.write_text("not a key")
        with pytest.raises(ConfigError, match=r"tls\.cert_file: cannot load") as err:
            client_kwargs(options(tls={"cert_file": str(cert), "key_file": str(bad), "key_password": SECRET}), "c")
        assert SECRET not in str(err.value)

    def test_key_without_cert_is_invalid(self) -> None:
        with pytest.raises(ValidationError, match="key_file needs cert_file"):
            options(tls={"key_file": "/k.pem"})
