"""pipeline/tls.py and the API's security options: validation, and what an unusable file says."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import ApiConfig
from pipeline.errors import ConfigError
from pipeline.tls import TlsOptions, client_context, server_context


class TestModel:
    @pytest.mark.parametrize(("body", "message"), [
        pytest.param({"key_file": "k"}, "key_file needs cert_file", id="key-without-cert"),
        pytest.param({"key_password": "p"}, "key_password needs cert_file", id="password-without-key"),
        pytest.param({"cert_file": "c", "key_password": "p", "key_password_file": "f"}, "not both", id="two-pw"),
    ])  # fmt: skip
    def test_inconsistent_options_are_refused(self, body: dict[str, str], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            TlsOptions.model_validate(body)

    def test_defaults_verify_against_the_system_store(self) -> None:
        context = client_context(TlsOptions())
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2

    def test_verify_false_turns_both_checks_off(self) -> None:
        context = client_context(TlsOptions(verify=False))
        assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


class TestUnusableFiles:
    def test_missing_ca_names_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"^tls\.ca_file: cannot load .*nope\.pem"):
            client_context(TlsOptions(ca_file=tmp_path / "nope.pem"))

    def test_garbage_certificate_names_the_key_never_the_password(self, tmp_path: Path) -> None:
        (tmp_path / "c.pem").write_text("not a certificate")
        options = TlsOptions.model_validate({"cert_file": str(tmp_path / "c.pem"), "key_password": "hunter2"})
        with pytest.raises(ConfigError) as info:
            client_context(options, "sinks.es.tls")
        assert info.value.problems[0].startswith("sinks.es.tls.cert_file: cannot load")
        assert "hunter2" not in str(info.value)

    def test_a_server_needs_a_certificate(self) -> None:
        with pytest.raises(ConfigError, match="a server needs its certificate"):
            server_context(TlsOptions(), "api.tls")


class TestApiConfig:
    @pytest.mark.parametrize(("body", "message"), [
        pytest.param({"token": "a", "token_file": "f"}, "not both", id="token-twice"),
        pytest.param({"token": ""}, "empty", id="empty-token"),
        pytest.param({"tls": {"ca_file": "ca.pem"}}, "needs cert_file", id="tls-without-cert"),
        pytest.param({"tls": {"cert_file": "c", "verify": False}}, "client options", id="verify-on-a-server"),
    ])  # fmt: skip
    def test_invalid(self, body: dict[str, object], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            ApiConfig.model_validate(body)

    def test_token_from_file(self, tmp_path: Path) -> None:
        (tmp_path / "t").write_text("tok\n")
        assert ApiConfig.model_validate({"token_file": str(tmp_path / "t")}).bearer_token() == "tok"
        assert "s3cr3t" not in repr(ApiConfig.model_validate({"token": "s3cr3t"}))
