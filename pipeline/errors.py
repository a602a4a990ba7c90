"""The exception tree, and what each kind of error means to the runtime.

- ConfigError: the configuration is wrong. Carries every problem found, each
  naming the file, the component and the key. The CLI exits with code 2.
- TransientError: a sink or source could not do its work *now* (server down,
  timeout, 429, 5xx). The runtime retries with backoff and settles nothing.
- PermanentError: the whole batch can never succeed as it is (e.g. a record
  larger than the broker accepts). Its events go to the dead-letter queue.
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


class PermanentError(PipelineError):
    """The batch can never be delivered as it is: dead-letter it."""


class DoubleSettleError(PipelineError):
    """A receipt was settled twice: a bug in a sink or the runtime."""
