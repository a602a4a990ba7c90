"""Secrets from a config value or from a file: the one rule for every `*_file` option.

A secret is either written in the config (normally as `${ENV_VAR}`, held as a
pydantic `SecretStr` so it never prints) or read from a file such as a mounted
Kubernetes secret. The file's content is used as it is, except that trailing
line endings (`\\n`, `\\r\\n`) are removed: `echo secret > file` and editors add
one, and a password never ends in a newline. Other whitespace is kept (it may be
part of the secret). A file that cannot be read is a ConfigError naming the key,
never the content.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from pipeline.errors import ConfigError


def read_secret_file(path: Path, key: str) -> str:
    """The secret in `path` (trailing line endings removed); ConfigError naming `key` when unreadable."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError([f"{key}: cannot read {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{key}: {path} is not UTF-8 text"]) from None


def secret_value(value: SecretStr | None, path: Path | None, key: str) -> str | None:
    """`value` if set, else the content of `path` (option `<key>_file`), else None."""
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    return read_secret_file(path, f"{key}_file")
