"""The `container` source: Docker json-file and CRI files, partials, streams, k8s metadata."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.unit.sources.harness import append, container_config, live_source, run_once

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "logs"
CID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"
UID = "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"


def k8s_layout(root: Path, content: bytes, *, ns: str = "shop", pod: str = "checkout-7d9f8b6c5-x2x9q",
               container: str = "checkout") -> tuple[Path, Path]:
    """Write a pods-layout log file and its /var/log/containers-style symlink; return (link, target)."""
    target = root / "pods" / f"{ns}_{pod}_{UID}" / container / "0.log"
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    (root / "containers").mkdir(exist_ok=True)
    link = root / "containers" / f"{pod}_{ns}_{container}-{CID}.log"
    link.symlink_to(os.path.relpath(target, link.parent))
    return link, target


def cri(ts: str, stream: str, tag: str, msg: str) -> bytes:
    return f"2024-05-14T09:12:{ts}Z {stream} {tag} {msg}\n".encode()


def docker(log: str, stream: str = "stdout", ts: str = "2024-05-14T09:12:03.481923456Z") -> bytes:
    return json.dumps({"log": log, "stream": stream, "time": ts}).encode() + b"\n"


class TestCri:
    async def test_partials_are_reassembled_per_stream(self, tmp_path: Path, data_dir: Path) -> None:
        content = (cri("03.100000000", "stdout", "F", "first")
                   + cri("03.200000000", "stdout", "P", "hello ")
                   + cri("03.250000000", "stderr", "F", "an error in between")
                   + cri("03.300000000", "stdout", "P", "big ")
                   + cri("03.400000000", "stdout", "F", "world")
                   + cri("03.500000000", "stdout", "F", ""))
        link, _ = k8s_layout(tmp_path, content)
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        got = [(e["message"], e["stream"], e["@timestamp"]) for e in h.events]
        assert got == [
            ("first", "stdout", "2024-05-14T09:12:03.100Z"),
            ("an error in between", "stderr", "2024-05-14T09:12:03.250Z"),
            ("hello big world", "stdout", "2024-05-14T09:12:03.200Z"),
            ("", "stdout", "2024-05-14T09:12:03.500Z"),
        ]
        first_line = len(cri("03.100000000", "stdout", "F", "first"))
        assert h.events[2]["source"] == {"path": str(link), "offset": first_line}
        assert h.offsets() == {str(link): len(content)}

    async def test_kubernetes_metadata_from_the_symlink_and_its_target(self, tmp_path: Path, data_dir: Path) -> None:
        k8s_layout(tmp_path, cri("03.1", "stdout", "F", "x"))
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        assert h.events[0]["kubernetes"] == {
            "namespace": "shop", "pod": "checkout-7d9f8b6c5-x2x9q", "pod_uid": UID, "container": "checkout",
            "container_id": CID, "node": "node-1"}
        assert "log_type" not in h.events[0]  # the parse transform detects it

    async def test_kubernetes_metadata_from_the_pods_layout(self, tmp_path: Path, data_dir: Path) -> None:
        k8s_layout(tmp_path, cri("03.1", "stdout", "F", "x"), ns="payments", pod="api-0", container="app")
        cfg = container_config(include=[f"{tmp_path}/pods/*/*/*.log"], log_type="application")
        h = await run_once(cfg, data_dir)
        assert h.events[0]["kubernetes"] == {"namespace": "payments", "pod": "api-0", "pod_uid": UID,
                                             "container": "app", "node": "node-1"}
        assert h.events[0]["log_type"] == "application"

    async def test_multiline_joins_each_stream_separately(self, tmp_path: Path, data_dir: Path) -> None:
        content = (cri("03.1", "stderr", "F", "2024-05-14 09:12:03 ERROR payment failed")
                   + cri("03.2", "stderr", "F", "Traceback (most recent call last):")
                   + cri("03.3", "stdout", "F", "GET /healthz 200")
                   + cri("03.4", "stderr", "F", '  File "/app/pay.py", line 9, in charge')
                   + cri("03.5", "stdout", "F", "GET /orders 200")
                   + cri("03.6", "stderr", "F", "app.errors.PaymentError: declined")
                   + cri("03.7", "stderr", "F", "2024-05-14 09:12:04 INFO retry scheduled"))
        k8s_layout(tmp_path, content)
        cfg = container_config(include=[f"{tmp_path}/containers/*.log"], multiline={"preset": "python_traceback"})
        h = await run_once(cfg, data_dir)
        by_stream = {s: [e["message"] for e in h.events if e["stream"] == s] for s in ("stdout", "stderr")}
        assert by_stream["stdout"] == ["GET /healthz 200", "GET /orders 200"]
        assert by_stream["stderr"] == [
            "2024-05-14 09:12:03 ERROR payment failed\nTraceback (most recent call last):\n"
            '  File "/app/pay.py", line 9, in charge\napp.errors.PaymentError: declined',
            "2024-05-14 09:12:04 INFO retry scheduled"]
        joined = next(e for e in h.events if e["message"].startswith("2024-05-14 09:12:03"))
        assert joined["@timestamp"] == "2024-05-14T09:12:03.100Z" and joined["source"]["offset"] == 0

    async def test_a_held_partial_bounds_the_checkpoint(self, tmp_path: Path, data_dir: Path) -> None:
        done = cri("03.1", "stdout", "F", "complete")
        held = cri("03.2", "stdout", "P", "the container is still writing this ")
        link, target = k8s_layout(tmp_path, done + held)
        cfg = container_config(include=[f"{tmp_path}/containers/*.log"], partial_timeout="1h")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(1)
            await asyncio.sleep(0.1)
            await live.source.checkpoint()
            assert live.h.offsets() == {str(link): len(done)}
            append(target, cri("03.3", "stdout", "F", "line"))
            await live.wait_events(2)
        assert live.h.messages() == ["complete", "the container is still writing this line"]

    async def test_invalid_utf8_and_malformed_lines_are_tagged_not_dropped(
            self, tmp_path: Path, data_dir: Path) -> None:
        content = cri("03.1", "stdout", "F", "ok") + b"2024-05-14T09:12:03.2Z stdout F caf\xe9\n" + b"garbage\n"
        k8s_layout(tmp_path, content)
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        assert [(e["message"], e.get("tags")) for e in h.events] == [
            ("ok", None), ("caf\ufffd", ["_invalid_utf8"]), ("garbage", ["_cri_parse_failure"])]


class TestDocker:
    async def test_json_file_lines_and_16k_partials(self, tmp_path: Path, data_dir: Path) -> None:
        long = "y" * 40000
        parts = [long[i:i + 16384] for i in range(0, len(long), 16384)]
        content = docker("started\n", ts="2024-05-14T09:12:03.100000000Z")
        for i, part in enumerate(parts):
            content += docker(part + ("\n" if i == len(parts) - 1 else ""), ts="2024-05-14T09:12:03.200000000Z")
        content += docker("oops\n", stream="stderr", ts="2024-05-14T09:12:03.300000000Z")
        d = tmp_path / "containers"
        d.mkdir()
        (d / f"web-1_frontend_nginx-{CID}.log").write_bytes(content)
        h = await run_once(container_config(include=[f"{d}/*.log"]), data_dir)
        assert [(len(e["message"]), e["stream"], e["@timestamp"]) for e in h.events] == [
            (7, "stdout", "2024-05-14T09:12:03.100Z"), (40000, "stdout", "2024-05-14T09:12:03.200Z"),
            (4, "stderr", "2024-05-14T09:12:03.300Z")]
        assert h.events[1]["message"] == long
        assert h.events[0]["kubernetes"] == {"namespace": "frontend", "pod": "web-1", "container": "nginx",
                                             "container_id": CID, "node": "node-1"}

    async def test_formats_are_detected_per_file(self, tmp_path: Path, data_dir: Path) -> None:
        d = tmp_path / "containers"
        d.mkdir()
        (d / f"a_ns_c-{'a' * 64}.log").write_bytes(docker("from docker\n"))
        (d / f"b_ns_c-{'b' * 64}.log").write_bytes(cri("03.1", "stdout", "F", "from cri"))
        h = await run_once(container_config(include=[f"{d}/*.log"]), data_dir)
        assert sorted(h.messages()) == ["from cri", "from docker"]


def docker_host(root: Path, content: bytes, config: dict[str, Any] | None) -> Path:
    """A Docker host's /var/lib/docker/containers/<id>/ folder: the json-file log and config.v2.json."""
    folder = root / "containers" / CID
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.v2.json").write_text(json.dumps(config))
    log = folder / f"{CID}-json.log"
    log.write_bytes(content)
    return log


WEB_CONFIG = {"ID": CID, "Name": "/web-1", "Image": "sha256:" + "ab" * 32,
              "Config": {"Image": "nginx:1.25", "Labels": {"com.docker.compose.service": "web"}}}


class TestDockerHost:
    async def test_container_metadata_from_the_path_and_config(self, tmp_path: Path, data_dir: Path) -> None:
        log = docker_host(tmp_path, docker("one\n") + docker("two\n", stream="stderr"), WEB_CONFIG)
        (log.parent / f"{CID}-json.log.1").write_bytes(docker("rotated\n"))
        cfg = container_config(include=[f"{tmp_path}/containers/*/*-json.log*"])
        h = await run_once(cfg, data_dir)
        assert sorted(h.messages()) == ["one", "rotated", "two"]
        for event in h.events:
            assert event["container"] == {"id": CID, "name": "web-1", "image": {"name": "nginx:1.25"},
                                          "labels": {"com_docker_compose_service": "web"}}
            assert "kubernetes" not in event
        assert h.events[0]["container"] is not h.events[1]["container"]

    async def test_without_config_the_id_and_one_warning(self, tmp_path: Path, data_dir: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
        docker_host(tmp_path, b"".join(docker(f"line {i}\n") for i in range(50)), None)
        cfg = container_config(include=[f"{tmp_path}/containers/*/*-json.log"], batch_max_lines=10)
        with caplog.at_level(logging.WARNING):
            h = await run_once(cfg, data_dir)
        assert len(h.events) == 50 and len(h.batches) > 1
        assert all(e["container"] == {"id": CID} for e in h.events)
        assert len([r for r in caplog.records if "config.v2.json" in r.getMessage()]) == 1

    async def test_kubernetes_paths_get_no_container_object(self, tmp_path: Path, data_dir: Path) -> None:
        k8s_layout(tmp_path, docker("x\n"))
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        assert "container" not in h.events[0] and h.events[0]["kubernetes"]["container_id"] == CID


class TestMixedAndBroken:
    async def test_a_file_mixing_docker_and_cri_lines(self, tmp_path: Path, data_dir: Path) -> None:
        content = (docker("from docker\n") + cri("03.5", "stderr", "F", "from cri")
                   + b"2024-05-14T09:12:03.6Z stdout an old runtime, no tag\n" + docker("docker again\n"))
        k8s_layout(tmp_path, content)
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        assert [(e["message"], e["stream"], e.get("tags")) for e in h.events] == [
            ("from docker", "stdout", None), ("from cri", "stderr", None),
            ("an old runtime, no tag", "stdout", None), ("docker again", "stdout", None)]
        assert h.events[1]["@timestamp"] == "2024-05-14T09:12:03.500Z"

    async def test_a_broken_line_ends_a_docker_partial(self, tmp_path: Path, data_dir: Path) -> None:
        content = docker("head of a long line ") + b'{"log":"cut short\n' + docker("next line\n")
        link, _ = k8s_layout(tmp_path, content)
        h = await run_once(container_config(include=[f"{tmp_path}/containers/*.log"]), data_dir)
        assert [(e["message"], e["source"]["offset"], e.get("tags")) for e in h.events] == [
            ("head of a long line ", 0, None),
            ('{"log":"cut short', len(docker("head of a long line ")), ["_docker_parse_failure"]),
            ("next line", len(content) - len(docker("next line\n")), None)]
        assert h.offsets() == {str(link): len(content)}


class TestExamples:
    async def test_the_example_container_logs(self, tmp_path: Path, data_dir: Path) -> None:
        root = tmp_path / "logs"
        shutil.copytree(EXAMPLES, root, symlinks=True)
        cfg = container_config(include=[f"{root}/containers/*.log"], multiline={"preset": "python_traceback"})
        h = await run_once(cfg, data_dir)
        pods = {e["kubernetes"]["pod"] for e in h.events}
        assert pods == {"checkout-7d9f8b6c5-x2x9q", "web-5c8d7f9b4-kq7zt"}
        tracebacks = [e for e in h.events if e["message"].startswith("Traceback")]
        assert len(tracebacks) == 1 and tracebacks[0]["stream"] == "stderr"
        assert tracebacks[0]["message"].endswith("VaultUnavailableError: vault returned 503")
        # One CRI record reassembled from P fragments, one Docker record from 16 KiB partials.
        assert sorted(len(e["message"]) for e in h.events if len(e["message"]) > 16384) == [16653, 19830]
        assert not [e for e in h.events if e.get("tags")]
        assert (await run_once(cfg, data_dir)).events == []

    @pytest.mark.parametrize(("name", "preset", "records", "joined"), [
        pytest.param("billing-worker.log", "python_traceback", 80, 2, id="python-traceback"),
        pytest.param("inventory-service.log", "java_stacktrace", 45, 2, id="java-stacktrace"),
        pytest.param("inventory-service.log", "iso8601_start", 45, 2, id="java-iso8601-start"),
    ])
    async def test_the_example_app_logs_join_stack_traces(self, tmp_path: Path, data_dir: Path, name: str,
                                                          preset: str, records: int, joined: int) -> None:
        from tests.unit.sources.harness import file_config

        h = await run_once(file_config(include=[str(EXAMPLES / "app" / name)], multiline={"preset": preset}),
                           data_dir)
        assert len(h.events) == records
        assert len([e for e in h.events if "\n" in e["message"]]) == joined
        assert all(e["message"][:4] == "2024" for e in h.events)
