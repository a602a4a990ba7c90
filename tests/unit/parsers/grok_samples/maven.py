"""Maven versions."""

from __future__ import annotations

from typing import Any

SAMPLES: dict[str, tuple[str, str, str]] = {
    "MAVEN_VERSION": ("spring-core-5.3.31.RELEASE.jar", "5.3.31.RELEASE", "5.3.31.FINAL"),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = []
