"""The base of every config model: unknown keys are errors, values are frozen.

Its own module so that option models used by the root config itself (the API's
TLS options, pipeline/tls.py) can build on it without importing pipeline/config.py.
pipeline/config.py re-exports it: `from pipeline.config import Model` keeps working.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of every config model: unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
