"""Configuration: the root model, the per-kind base models, and the YAML loader.

Validation collects every problem before failing (pass 1: each component
against its registered model; pass 2: the graph), and each problem reads
`FILE: sinks.es.bulk_max_bytes: message`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator

from pipeline import registry
from pipeline.errors import ConfigError
from pipeline.interpolate import interpolate
from pipeline.model import Model as Model  # re-exported: every config model builds on it
from pipeline.secrets import secret_value
from pipeline.tls import TlsOptions
from pipeline.units import ByteSize, Duration

# Keys the pipeline owns at the root of an event: static fields may not replace them.
_OWNED_ROOT_KEYS = frozenset({"@timestamp", "message", "tags"})


class SourceConfig(Model):
    type: str = Field(description="Source type.")
    log_type: str | None = Field(
        default=None,
        description="log_type stamped on every event (application, access, error, ...); "
        "the parse transform routes on it. Unset: detected by the parse transform.",
        examples=["access"],
    )
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="Static fields added to every event of this source, as Filebeat's `fields`: under "
        "`fields_key` (`fields` by default), or at the root with `fields_under_root`. Values may use "
        "`${VAR}` from the environment; nested mappings are kept as they are.",
        examples=[{"service": "nginx", "environment": "${ENVIRONMENT:-production}"}],
    )
    fields_under_root: bool = Field(
        default=False,
        description="Put `fields` at the root of the event instead of under `fields_key`; they replace "
        "fields of the same name (except `@timestamp`, `message` and `tags`, which are refused).",
    )
    fields_key: str = Field(
        default="fields",
        min_length=1,
        description="Where `fields` go when not under the root (a dotted path for a nested key); merged into "
        "a mapping already there.",
        examples=["labels"],
    )

    @model_validator(mode="after")
    def _fields_placement(self) -> SourceConfig:
        if self.fields_under_root and "fields_key" in self.model_fields_set:
            raise ValueError("fields_key and fields_under_root: true exclude each other: choose one place")
        if self.fields_under_root:
            owned = sorted(_OWNED_ROOT_KEYS & self.fields.keys())
            if owned:
                raise ValueError(f"fields_under_root cannot replace {', '.join(owned)}: the pipeline owns them")
        return self


class TransformConfig(Model):
    type: str = Field(description="Transform type.")
    inputs: list[str] = Field(
        min_length=1,
        description="Names of the sources/transforms feeding this one; `name.output` for a named output "
        "of a transform that has several (a `route`).",
    )

    def output_names(self) -> tuple[str, ...]:
        """Named outputs, when the transform has several (consumers then name one); () for the single output."""
        return ()


class BatchOptions(Model):
    max_events: int = Field(default=1000, gt=0, description="Send when this many events are pending.")
    max_bytes: ByteSize = Field(
        default=8 * 1024 * 1024, gt=0, description="Send when about this many bytes are pending."
    )
    timeout: Duration = Field(default=1.0, ge=0, description="Send a partial batch after this long.")


class RetryOptions(Model):
    initial_backoff: Duration = Field(default=0.1, gt=0, description="First wait after a transient failure.")
    max_backoff: Duration = Field(default=30.0, gt=0, description="Cap of the exponential backoff.")


class SinkConfig(Model):
    type: str = Field(description="Sink type.")
    inputs: list[str] = Field(
        min_length=1,
        description="Names of the sources/transforms feeding this sink; `name.output` for a named output of a `route`.",
    )
    batch: BatchOptions = Field(default_factory=BatchOptions, description="How events are grouped per send.")
    retry: RetryOptions = Field(
        default_factory=RetryOptions,
        description="Backoff for transient failures (retried until delivered or shut down: nothing is dropped).",
    )
    max_in_flight: int = Field(default=1, gt=0, description="Concurrent sends.")

    def max_event_bytes(self) -> int | None:
        """The largest event this sink sends unchanged (None: no limit); `validate` warns when a source
        upstream can emit more. A sink with a limit cuts `message` to fit (tagged `_truncated`)."""
        return None

    critical: bool = Field(
        default=True,
        description="Whether `/ready` fails while this sink cannot deliver. A non-critical sink (alert "
        "channels, by default) that is down makes `/ready` report `degraded` and stay 200, so an outage of a "
        "notification channel does not block a rollout; its events are still held and retried, never dropped.",
    )


class ApiConfig(Model):
    enabled: bool = Field(default=True, description="Serve /metrics, /health, /ready, /status.")
    address: str = Field(
        default="127.0.0.1:9600",
        description="host:port to bind (loopback by default). Another address without `token` is warned "
        "about at start: /status, /metrics and POST /query would be open to the network.",
        examples=["127.0.0.1:9600", "0.0.0.0:9600"],
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token every endpoint but /health requires (`Authorization: Bearer <token>`); with "
        "it, POST /query is accepted from any address. Use `${ENV_VAR}` or `token_file`.",
        examples=["${PIPELINE_API_TOKEN}"],
    )
    token_file: Path | None = Field(
        default=None,
        description="File holding the API token (trailing newline stripped), e.g. a mounted secret.",
        examples=["/run/secrets/pipeline-api-token"],
    )
    tls: TlsOptions | None = Field(
        default=None,
        description="Serve HTTPS: `cert_file` (and `key_file`) required; `ca_file` makes client certificates "
        "signed by it required (mutual TLS). The shared TLS options, server side (see docs/security.md).",
        examples=[{"cert_file": "/etc/pipeline/tls/api.pem", "key_file": "/etc/pipeline/tls/api.key"}],
    )

    @model_validator(mode="after")
    def _consistent(self) -> ApiConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set token or token_file, not both")
        if self.token is not None and not self.token.get_secret_value():
            raise ValueError("token: empty (unset the key, or give a token)")
        if self.tls is not None:
            if self.tls.cert_file is None:
                raise ValueError("tls: a server needs cert_file (and key_file)")
            if not self.tls.verify or self.tls.server_name is not None:
                raise ValueError("tls: verify and server_name are client options; the API is a server")
        return self

    def bearer_token(self) -> str | None:
        """The token clients must present, read now (ConfigError naming api.token_file when unreadable)."""
        return secret_value(self.token, self.token_file, "api.token")


class RootConfig(Model):
    data_dir: Path = Field(default=Path("./data"), description="Checkpoints, dead-letter queue, embedded stores.")
    host: str | None = Field(default=None, description="Value of the `host` field. Default: the machine's hostname.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="The HTTP API.")
    shutdown_timeout: Duration = Field(default=30.0, ge=0, description="How long SIGTERM waits for in-flight batches.")
    queue_capacity: int = Field(
        default=8,
        gt=0,
        description="Batches each stage's input queue holds (backpressure bound). More buffers longer bursts at "
        "the cost of memory (a batch of 1000 parsed access events holds 1-3 MiB).",
    )
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default=1,
        description="Processes that frame, transform and encode file lines: `auto` is the CPUs this process may "
        "use (its affinity, capped by a cgroup CPU quota); 1 does everything in one process (with the workers' "
        "batch path, in this process, for sources whose sinks all write the encoded lines as they are: a `file` "
        "sink with one path, `kafka`). Used by `file` "
        "sources without multiline whose events flow through per-event transforms (parse, geoip, mutate, filter) "
        "into sinks; other sources stay in the main process. Order per file is kept, and a checkpoint still only "
        "moves once every sink settled. A worker that dies is replaced and its unanswered chunks are processed "
        "again (nothing lost or written twice); more than five deaths in a minute stop the run with an error. "
        "`pipeline run` starts the workers before it loads the config when the file's text has `workers:` at "
        "the top level and a `file` source (their start-up overlaps the daemon's); any it turns out not to need "
        "are ended. See docs/architecture.md.",
        examples=["auto", 4],
    )
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Named sources.")
    transforms: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Named transforms.")
    sinks: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Named sinks.")


@dataclass
class PipelineConfig:
    """A validated configuration: the root settings plus each component's typed model."""

    path: str
    root: RootConfig
    sources: dict[str, Any] = field(default_factory=dict)
    transforms: dict[str, Any] = field(default_factory=dict)
    sinks: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root.data_dir

    @property
    def host(self) -> str:
        return self.root.host or os.environ.get("NODE_NAME") or socket.gethostname()

    def components(self, kind: registry.Kind) -> dict[str, Any]:
        return {"source": self.sources, "transform": self.transforms, "sink": self.sinks}[kind]


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(path: str, prefix: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = format_loc(tuple(err["loc"]))
        key = f"{prefix}.{loc}" if loc else prefix
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(f"{path}: {key}: {msg}")
    return problems


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> PipelineConfig:
    """Load, interpolate and validate a config file; raise ConfigError listing every problem."""
    config, problems = load_config_collecting(path, env)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def load_config_collecting(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> tuple[PipelineConfig | None, list[str]]:
    """Like `load_config`, but return every problem instead of raising, with what did validate.

    The config holds each component whose own model validated, so `pipeline validate` can
    go on to build-check them and report everything in one pass. It is None only when
    the file itself cannot be read or parsed.
    """
    path = str(path)
    env = os.environ if env is None else env
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except OSError as exc:
        return None, [f"{path}: cannot read config: {exc.strerror}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 text (byte {exc.start}): save the config as UTF-8"]
    except yaml.YAMLError as exc:
        return None, [f"{path}: invalid YAML: {exc}"]
    return _parse(raw, path, env)


def parse_config(raw: Any, path: str, env: Mapping[str, str]) -> PipelineConfig:
    config, problems = _parse(raw, path, env)
    if problems or config is None:
        raise ConfigError(problems)
    return config


_SECTIONS = ("sources", "transforms", "sinks")


# YAML aliases share one subtree among many places; nested ones ("billion laughs") make a small
# file expand to billions of values when walked. No real config comes near this many.
MAX_CONFIG_VALUES = 200_000


def _expands_beyond(raw: Any, limit: int) -> bool:
    """Whether walking `raw` (aliases counted at each use) visits more than `limit` values."""
    stack = [raw]
    seen = 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _parse(raw: Any, path: str, env: Mapping[str, str]) -> tuple[PipelineConfig | None, list[str]]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [f"{path}: the top level must be a mapping"]
    if _expands_beyond(raw, MAX_CONFIG_VALUES):
        return None, [f"{path}: the config expands to more than {MAX_CONFIG_VALUES} values (nested YAML aliases?)"]
    problems: list[str] = []
    interp_errors: list[str] = []
    raw = interpolate(raw, env, errors=interp_errors)
    problems.extend(f"{path}: {e}" for e in interp_errors)

    try:
        root = RootConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(path, "", exc))
        # Go on with the component sections that are mappings, so their problems are
        # reported in the same pass as the root's.
        sections = {s: raw[s] for s in _SECTIONS if isinstance(raw.get(s), dict)}
        try:
            root = RootConfig.model_validate(sections)
        except ValidationError:
            return None, problems

    # Absolute from here on: nothing later may depend on the working directory
    # (an embedded library that chdirs while loading would otherwise move it).
    root = root.model_copy(update={"data_dir": root.data_dir.absolute()})
    config = PipelineConfig(path=path, root=root)
    for kind in registry.KINDS:
        section = registry.SECTION[kind]
        for name, body in getattr(root, section).items():
            prefix = f"{section}.{name}"
            if not isinstance(body, dict):
                problems.append(f"{path}: {prefix}: must be a mapping with a `type`")
                continue
            type_name = body.get("type")
            if not type_name:
                problems.append(f"{path}: {prefix}.type: required key is missing")
                continue
            spec = registry.lookup(kind, str(type_name))
            if spec is None:
                known = ", ".join(registry.known_types(kind))
                problems.append(f"{path}: {prefix}.type: unknown {kind} type {type_name!r} (known: {known})")
                continue
            try:
                model = spec.model.model_validate(body)
            except ValidationError as exc:
                problems.extend(_pydantic_problems(path, prefix, exc))
                continue
            config.components(kind)[name] = model

    from pipeline.graph import check_graph  # late: the graph module reads PipelineConfig

    # Named outputs of the transforms that validated (a failed one is reported already; references to it are not).
    outputs = {name: model.output_names() for name, model in config.transforms.items()}
    problems.extend(f"{path}: {p}" for p in check_graph(root, outputs))
    return config, problems
