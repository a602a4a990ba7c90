"""Tests for parsers/kubernetes.py: metadata from /var/log/containers and /var/log/pods paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parsers import kubernetes
from parsers.kubernetes import clear_cache, metadata_from_path

CID = "0123456789abcdef" * 4
UID = "8f2b4c1e-3d5a-4b6c-9e7f-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


class TestContainersLayout:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param(
                f"web-7d9f8b6c5-x2x4z_default_nginx-{CID}.log",
                {"pod": "web-7d9f8b6c5-x2x4z", "namespace": "default", "container": "nginx", "container_id": CID},
                id="deployment-pod",
            ),
            pytest.param(
                f"coredns-5d78c9869d-abcde_kube-system_coredns-{CID}.log",
                {
                    "pod": "coredns-5d78c9869d-abcde",
                    "namespace": "kube-system",
                    "container": "coredns",
                    "container_id": CID,
                },
                id="namespace-with-dash",
            ),
            pytest.param(
                f"etcd-node-1.example.com_kube-system_etcd-{CID}.log",
                {
                    "pod": "etcd-node-1.example.com",
                    "namespace": "kube-system",
                    "container": "etcd",
                    "container_id": CID,
                },
                id="pod-with-dots",
            ),
            pytest.param(
                f"api-0_prod-eu_istio-proxy-sidecar-{CID}.log",
                {"pod": "api-0", "namespace": "prod-eu", "container": "istio-proxy-sidecar", "container_id": CID},
                id="container-with-dashes",
            ),
        ],
    )
    def test_names(self, name: str, expected: dict[str, Any]) -> None:
        assert metadata_from_path(f"/var/log/containers/{name}") == expected

    def test_any_prefix(self, tmp_path: Path) -> None:
        path = tmp_path / "var_log" / f"p_ns_c-{CID}.log"
        assert metadata_from_path(str(path)) == {"pod": "p", "namespace": "ns", "container": "c", "container_id": CID}
        assert metadata_from_path(f"p_ns_c-{CID}.log") is not None


class TestPodsLayout:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            pytest.param(
                f"/var/log/pods/default_web-7d9f8b6c5-x2x4z_{UID}/nginx/0.log",
                {
                    "namespace": "default",
                    "pod": "web-7d9f8b6c5-x2x4z",
                    "pod_uid": UID,
                    "container": "nginx",
                    "restart": 0,
                },
                id="first-run",
            ),
            pytest.param(
                f"/var/log/pods/kube-system_etcd-node-1.example.com_{UID}/etcd/12.log",
                {
                    "namespace": "kube-system",
                    "pod": "etcd-node-1.example.com",
                    "pod_uid": UID,
                    "container": "etcd",
                    "restart": 12,
                },
                id="restarted-dotted-pod",
            ),
            pytest.param(
                "/var/log/pods/kube-system_kube-apiserver-cp1_4b6a7bd2f5e84e1c9f0a1b2c3d4e5f60/kube-apiserver/3.log",
                {
                    "namespace": "kube-system",
                    "pod": "kube-apiserver-cp1",
                    "pod_uid": "4b6a7bd2f5e84e1c9f0a1b2c3d4e5f60",
                    "container": "kube-apiserver",
                    "restart": 3,
                },
                id="static-pod-hash-uid",
            ),
            pytest.param(
                f"/var/log/pods/default_web_{UID}/app-sidecar/0.log.20240102-030405",
                {"namespace": "default", "pod": "web", "pod_uid": UID, "container": "app-sidecar", "restart": 0},
                id="rotated",
            ),
        ],
    )
    def test_paths(self, path: str, expected: dict[str, Any]) -> None:
        assert metadata_from_path(path) == expected

    def test_any_prefix(self, tmp_path: Path) -> None:
        path = tmp_path / "pods" / f"ns_pod_{UID}" / "c" / "1.log"
        meta = metadata_from_path(str(path))
        assert meta == {"namespace": "ns", "pod": "pod", "pod_uid": UID, "container": "c", "restart": 1}


class TestNoMetadata:
    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("/var/log/syslog", id="syslog"),
            pytest.param("", id="empty"),
            pytest.param(f"/var/log/containers/p_ns_c-{CID[:-1]}.log", id="short-id"),
            pytest.param(f"/var/log/containers/p_ns_c-{CID.upper()}.log", id="uppercase-id"),
            pytest.param(f"/var/log/containers/p_ns_c_x-{CID}.log", id="too-many-fields"),
            pytest.param(f"/var/log/containers/p_c-{CID}.log", id="too-few-fields"),
            pytest.param(f"/var/log/containers/p_ns_c-{CID}.log.1", id="not-dot-log"),
            pytest.param("/var/log/pods/ns_pod/c/0.log", id="pod-dir-without-uid"),
            pytest.param(f"/var/log/pods/ns_pod_{UID}/0.log", id="no-container-dir"),
            pytest.param(f"/var/log/pods/ns_pod_{UID}/c/x.log", id="restart-not-number"),
        ],
    )
    def test_none(self, path: str) -> None:
        assert metadata_from_path(path) is None


class TestCache:
    def test_returns_a_fresh_dict_each_time(self) -> None:
        path = f"/var/log/containers/p_ns_c-{CID}.log"
        first = metadata_from_path(path)
        assert first is not None
        first["node"] = "n1"
        second = metadata_from_path(path)
        assert second == {"pod": "p", "namespace": "ns", "container": "c", "container_id": CID}
        assert second is not first

    def test_bounded_lru(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(kubernetes, "CACHE_SIZE", 3)
        paths = [f"/var/log/containers/p{i}_ns_c-{CID}.log" for i in range(5)]
        for p in paths[:3]:
            metadata_from_path(p)
        metadata_from_path(paths[0])  # recently used: survives the next insertions
        metadata_from_path(paths[3])
        metadata_from_path(paths[4])
        assert list(kubernetes._cache) == [paths[0], paths[3], paths[4]]

    def test_misses_are_cached(self) -> None:
        assert metadata_from_path("/var/log/syslog") is None
        assert "/var/log/syslog" in kubernetes._cache
