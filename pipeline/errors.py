"""The exception tree, and what the runtime does with each kind.

- ConfigError: the configuration is wrong. Carries every problem found, each
  naming the file, the component and the key. The CLI exits with code 2.
- TransientError: a sink or source cannot do its work *now* (server down,
  timeout, 429, 5xx, a table not there yet). Raised by `Sink.start` or
  `Sink.send`, it makes the driver retry with backoff and settle nothing; it
  is logged as a warning with its message only, since it is expected.
- StartError: the destination refuses a sink's setup, and retrying will not
  help until someone acts: a missing topic with `create_topics: false`,
  refused credentials, an untrusted certificate, a rejected index template.
  Sources raise it too (a Kafka source whose TLS or SASL is refused). With `--once` the run stops
  with one clear line and exit code 2; as a daemon it is logged at error
  level, shown by `/ready`, and retried with backoff (someone may fix it).
- Any other exception from `start` or `send` is retried the same way (a log
  pipeline never drops data because a client library raised something
  unexpected), but it is logged with its traceback: it is probably a bug.
- Rejected for good is not an exception: a sink returns
  `pipeline.sink.Outcome(rejected=...)` (or `Outcome.reject_all`) and the
  driver writes those events to the dead-letter queue and settles them.
- DoubleSettleError: a receipt was settled twice. Always a bug in our code.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(PipelineError):
    """One or more configuration problems, each a line `FILE: path.to.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TransientError(PipelineError):
    """Retry later: nothing was (or may have been) delivered."""


class StartError(PipelineError):
    """A destination (or a source's server) refuses our setup; `key` is the option to look at
    (relative to the component). Refused TLS and credentials are StartErrors too."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
        self.component: str | None = None  # set by the driver (or the source)
        self.section = "sinks"  # "sources" when a source raises it

    def problem(self, config_path: str) -> str:
        """The line the CLI prints: `FILE: sinks.NAME.KEY: message`."""
        where = f"{self.section}.{self.component}.{self.key}" if self.component else self.key
        return f"{config_path}: {where}: {self.message}"


class DoubleSettleError(PipelineError):
    """A receipt was settled twice: a bug in a sink or the runtime."""
