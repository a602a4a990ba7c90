"""pipeline/sources/docker_meta.py: container id from the path, config.v2.json metadata, its cache."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.sources.docker_meta import (
    REFRESH_SECONDS,
    DockerContainer,
    DockerMetadata,
    container_fields,
    container_id,
    event_fields,
)

CID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"
IMAGE_ID = "sha256:" + "ab" * 32


def docker_config(name: str = "/web-1", image: str = "nginx:1.25",
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The parts of Docker's config.v2.json we read, among some we do not."""
    return {"ID": CID, "Name": name, "Image": IMAGE_ID, "State": {"Running": True, "Pid": 4242},
            "Config": {"Hostname": "3f4e5d6c7b8a", "Image": image, "Labels": labels or {}}}


def write_container(root: Path, config: dict[str, Any] | str | None) -> Path:
    """A /var/lib/docker/containers/<id>/ folder; returns the log path."""
    folder = root / CID
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.v2.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return folder / f"{CID}-json.log"


class TestContainerId:
    @pytest.mark.parametrize(("path", "expected"), [
        pytest.param(f"/var/lib/docker/containers/{CID}/{CID}-json.log", CID, id="log"),
        pytest.param(f"/var/lib/docker/containers/{CID}/{CID}-json.log.1", CID, id="rotated"),
        pytest.param(f"/data/docker/containers/{CID}/{CID}-json.log", CID, id="other-root"),
        pytest.param(f"/var/lib/docker/containers/{CID}/{'0' * 64}-json.log", None, id="other-id"),
        pytest.param(f"/var/lib/docker/containers/{CID}/{CID}-json.log.gz", None, id="compressed"),
        pytest.param(f"/var/log/containers/web_ns_c-{CID}.log", None, id="kubernetes"),
        pytest.param("/var/log/syslog", None, id="plain"),
    ])  # fmt: skip
    def test_from_path(self, path: str, expected: str | None) -> None:
        assert container_id(path) == expected


class TestContainerFields:
    def test_name_image_labels(self) -> None:
        labels = {"com.docker.compose.project": "shop", "com.docker.compose.project.working_dir": "/srv", "tier": "web"}
        assert container_fields(docker_config(labels=labels), CID) == {
            "id": CID, "name": "web-1", "image": {"name": "nginx:1.25"},
            # Dots become "_" (Filebeat's dedot): "project" and "project.working_dir" could not both be mapped.
            "labels": {"com_docker_compose_project": "shop", "com_docker_compose_project_working_dir": "/srv",
                       "tier": "web"}}  # fmt: skip

    @pytest.mark.parametrize(("config", "expected"), [
        pytest.param({}, {"id": CID}, id="empty"),
        pytest.param({"Name": "/", "Config": None}, {"id": CID}, id="no-name"),
        pytest.param({"Name": "plain", "Config": {"Image": 3, "Labels": None}}, {"id": CID, "name": "plain"},
                     id="wrong-types"),
    ])  # fmt: skip
    def test_missing_pieces_are_left_out(self, config: dict[str, Any], expected: dict[str, Any]) -> None:
        assert container_fields(config, CID) == expected

    def test_not_an_object(self) -> None:
        with pytest.raises(ValueError, match="not a JSON object"):
            container_fields([1], CID)

    def test_event_fields_are_a_deep_enough_copy(self) -> None:
        fields = container_fields(docker_config(labels={"a": "1"}), CID)
        copy = event_fields(fields)
        copy["labels"]["a"] = "changed"
        copy["image"]["name"] = "changed"
        assert fields["labels"] == {"a": "1"} and fields["image"] == {"name": "nginx:1.25"}


class TestDockerContainer:
    def test_reads_config_beside_the_log(self, tmp_path: Path) -> None:
        log = write_container(tmp_path, docker_config())
        container = DockerMetadata().for_path(str(log))
        assert container is not None
        assert container.fields(100.0) == {"id": CID, "name": "web-1", "image": {"name": "nginx:1.25"}}

    def test_refreshed_when_the_file_changes_but_not_more_often_than_the_interval(self, tmp_path: Path) -> None:
        log = write_container(tmp_path, docker_config(name="/before"))
        container = DockerContainer(CID, str(log.parent))
        assert container.fields(100.0)["name"] == "before"
        write_container(tmp_path, docker_config(name="/after-rename"))
        assert container.fields(100.0 + REFRESH_SECONDS / 2)["name"] == "before"  # not stat'ed yet
        assert container.fields(100.0 + REFRESH_SECONDS)["name"] == "after-rename"

    def test_unchanged_file_is_not_parsed_again(self, tmp_path: Path) -> None:
        log = write_container(tmp_path, docker_config())
        container = DockerContainer(CID, str(log.parent))
        first = container.fields(0.0)
        assert container.fields(REFRESH_SECONDS * 3) is first

    @pytest.mark.parametrize("config", [
        pytest.param(None, id="missing"),
        pytest.param('{"Name": "/web-1", "Config": {', id="truncated-json"),
        pytest.param("[]", id="not-an-object"),
    ])  # fmt: skip
    def test_unusable_config_gives_the_id_and_one_warning(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture, config: str | None) -> None:
        log = write_container(tmp_path, config)
        container = DockerContainer(CID, str(log.parent))
        with caplog.at_level(logging.WARNING, logger="pipeline.sources.docker_meta"):
            for i in range(5):
                assert container.fields(i * REFRESH_SECONDS) == {"id": CID}
                (log.parent / "config.v2.json").write_text('{"broken": ' + "x" * i)
        assert len([r for r in caplog.records if "config.v2.json" in r.getMessage()]) == 1

    def test_the_last_good_metadata_stays_when_the_file_goes(self, tmp_path: Path) -> None:
        log = write_container(tmp_path, docker_config())
        container = DockerContainer(CID, str(log.parent))
        assert container.fields(0.0)["name"] == "web-1"
        os.unlink(log.parent / "config.v2.json")
        assert container.fields(REFRESH_SECONDS)["name"] == "web-1"


class TestDockerMetadata:
    def test_one_container_per_directory_shared_by_rotated_files(self, tmp_path: Path) -> None:
        log = write_container(tmp_path, docker_config())
        meta = DockerMetadata()
        current = meta.for_path(str(log))
        assert current is not None
        assert meta.for_path(f"{log}.1") is current

    def test_a_symlink_to_a_docker_log(self, tmp_path: Path) -> None:
        log = write_container(tmp_path / "containers", docker_config())
        log.write_text("")
        link = tmp_path / "web.log"
        link.symlink_to(log)
        found = DockerMetadata().for_path(str(link))
        assert found is not None and found.id == CID

    def test_other_paths_have_none(self, tmp_path: Path) -> None:
        assert DockerMetadata().for_path(str(tmp_path / "app.log")) is None
