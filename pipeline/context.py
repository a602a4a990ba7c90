"""What every component factory receives besides its own config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.dlq import DeadLetterQueue
from pipeline.metrics import Metrics


@dataclass
class BuildContext:
    config: PipelineConfig
    data_dir: Path
    host: str
    dlq: DeadLetterQueue
    metrics: Metrics
    once: bool = False
