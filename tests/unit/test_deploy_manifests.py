"""deploy/kubernetes/ and deploy/systemd/ against the code and the configs they run.

The manifests are read with PyYAML and checked against what the daemon does:
the CLI parses the container args; the probes and Prometheus annotations point
at the port the config's API binds (resolved with the pod's own environment);
the embedded configs are config/agent.yaml and config/processor.yaml byte for
byte, and `pipeline validate` accepts them with the pod's environment; the
agent can read every path its sources include and write its data_dir.

No cluster runs here: `kubectl kustomize` (when kubectl is installed) renders
the kustomization offline, which is as far as a client goes without an API
server. The systemd unit is checked by `systemd-analyze verify` and
`systemd-analyze security --offline`, which need no running systemd.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import _parser
from pipeline.config import RootConfig, load_config
from pipeline.interpolate import interpolate

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
SYSTEMD = ROOT / "deploy" / "systemd"
CONFIGS = {"agent": ROOT / "config" / "agent.yaml", "processor": ROOT / "config" / "processor.yaml"}
WORKLOADS = {"agent": ("DaemonSet", "pipeline-agent"), "processor": ("Deployment", "pipeline-processor")}
CONFIG_KEY = "pipeline.yaml"
IMAGE_UID = 10001  # the Dockerfile's `pipeline` user
# Placeholders for values the cluster supplies at run time.
FIELD_REF_VALUE = "node-1"
SECRET_VALUE = "secret-from-kubernetes"
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-)?")


# -- loading ----------------------------------------------------------------------------

def _manifest_files() -> list[Path]:
    return sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def _load_all() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return [doc for _, doc in _load_all()]


def _find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _config_text(component: str) -> str:
    path = CONFIGS[component]
    # Not a skip: the manifests embed this file, so without it they cannot be deployed.
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: the {component} ConfigMap embeds it"
    return path.read_text()


class Workload:
    """One workload's pod spec, its single container, and what its config resolves to inside the pod."""

    def __init__(self, component: str, manifests: list[dict[str, Any]]) -> None:
        kind, name = WORKLOADS[component]
        self.component = component
        self.manifest = _find(manifests, kind, name)
        self.pod_meta = self.manifest["spec"]["template"]["metadata"]
        self.pod = self.manifest["spec"]["template"]["spec"]
        assert len(self.pod["containers"]) == 1
        self.container = self.pod["containers"][0]
        self.volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        self.mounts = {m["mountPath"]: m for m in self.container.get("volumeMounts", [])}
        self.ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}

    def env(self) -> dict[str, str]:
        """The container's environment as the daemon sees it (cluster-supplied values as placeholders)."""
        out: dict[str, str] = {}
        for var in self.container.get("env", []):
            if "value" in var:
                out[var["name"]] = str(var["value"])
            elif "fieldRef" in var["valueFrom"]:
                out[var["name"]] = FIELD_REF_VALUE
            else:
                out[var["name"]] = SECRET_VALUE
        return out

    def env_source(self, name: str) -> dict[str, Any]:
        matches = [v for v in self.container.get("env", []) if v["name"] == name]
        assert len(matches) == 1, f"{self.component}: env {name} is set {len(matches)} times"
        return matches[0]

    def config_mount(self) -> tuple[str, dict[str, Any]]:
        """(mountPath, ConfigMap volume source) of the config volume."""
        for path, mount in self.mounts.items():
            source = self.volumes[mount["name"]].get("configMap")
            if source is not None:
                return path, source
        raise AssertionError(f"{self.component}: no ConfigMap is mounted")

    def resolved_root(self) -> RootConfig:
        """The config's root settings after ${VAR} interpolation with the pod's environment."""
        errors: list[str] = []
        raw = interpolate(yaml.safe_load(_config_text(self.component)), self.env(), errors=errors)
        assert not errors, errors
        return RootConfig.model_validate(raw)

    def port_number(self, port: int | str) -> int:
        if isinstance(port, int):
            return port
        assert port in self.ports, f"{self.component}: no container port named {port!r}"
        return self.ports[port]

    def mount_for(self, path: str) -> dict[str, Any] | None:
        """The volume mount that holds `path` (the longest mountPath that is a prefix of it)."""
        best = None
        for mount_path, mount in self.mounts.items():
            if (path == mount_path or path.startswith(mount_path.rstrip("/") + "/")) and (
                    best is None or len(mount_path) > len(best["mountPath"])):
                best = mount
        return best


@pytest.fixture(scope="module", params=sorted(WORKLOADS))
def workload(request: pytest.FixtureRequest, manifests: list[dict[str, Any]]) -> Workload:
    return Workload(request.param, manifests)


@pytest.fixture(scope="module")
def agent(manifests: list[dict[str, Any]]) -> Workload:
    return Workload("agent", manifests)


@pytest.fixture(scope="module")
def processor(manifests: list[dict[str, Any]]) -> Workload:
    return Workload("processor", manifests)


def _variables(config_text: str) -> set[tuple[str, bool]]:
    """(name, has_default) of every ${VAR} in the config's values (not in its comments)."""
    found: set[tuple[str, bool]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.update((m.group(1), bool(m.group(2))) for m in ENV_VAR.finditer(node))

    walk(yaml.safe_load(config_text))
    return found


def _api_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _pipeline_command() -> list[str]:
    script = Path(sys.executable).parent / "pipeline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


@functools.cache
def _render_module() -> ModuleType:
    path = ROOT / "scripts" / "render-configmaps"
    loader = importlib.machinery.SourceFileLoader("render_configmaps", str(path))
    spec = importlib.util.spec_from_loader("render_configmaps", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_configmaps"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


# -- the kustomization ----------------------------------------------------------------------

class TestKustomization:
    def test_lists_every_manifest_and_nothing_else(self) -> None:
        kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
        assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]
        # Generators cannot read config/ (outside this folder): the ConfigMaps are manifests.
        assert "configMapGenerator" not in kustomization
        assert kustomization["namespace"] == "pipeline"

    def test_every_document_is_well_formed(self, manifests: list[dict[str, Any]]) -> None:
        for doc in manifests:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
            assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "pipeline"
            assert "namespace" not in doc["metadata"], "the kustomization sets the namespace"

    def test_image_tag_is_the_package_version(self, workload: Workload) -> None:
        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert workload.container["image"] == f"pipeline:{version}"
        kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
        assert {"name": "pipeline", "newTag": version} in kustomization["images"]

    def test_kubectl_kustomize_renders(self) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip("kubectl is not installed; the YAML checks above still ran")
        done = subprocess.run([kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
        kinds = sorted(d["kind"] for d in rendered)
        assert kinds == sorted(d["kind"] for _, d in _load_all())
        for doc in rendered:
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == "pipeline", doc["metadata"]


# -- the ConfigMaps ---------------------------------------------------------------------------

class TestConfigMaps:
    @pytest.mark.parametrize("component", sorted(CONFIGS))
    def test_embedded_config_is_the_file_byte_for_byte(self, manifests: list[dict[str, Any]],
                                                       component: str) -> None:
        expected = CONFIGS[component]
        assert expected.is_file(), f"{expected.relative_to(ROOT)} is missing: the ConfigMap embeds it"
        configmap = _find(manifests, "ConfigMap", f"pipeline-{component}-config")
        assert set(configmap["data"]) == {CONFIG_KEY}
        assert configmap["data"][CONFIG_KEY].encode() == expected.read_bytes(), \
            f"stale: run scripts/render-configmaps after editing {expected.relative_to(ROOT)}"

    @pytest.mark.parametrize("component", sorted(CONFIGS))
    def test_config_checksum_annotation(self, manifests: list[dict[str, Any]], component: str) -> None:
        kind, name = WORKLOADS[component]
        annotations = _find(manifests, kind, name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["checksum/config"] == hashlib.sha256(CONFIGS[component].read_bytes()).hexdigest()

    def test_render_script_check_mode_agrees(self) -> None:
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render-configmaps"), "--check"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def test_workload_mounts_its_configmap(self, workload: Workload, manifests: list[dict[str, Any]]) -> None:
        _, source = workload.config_mount()
        assert source["name"] == f"pipeline-{workload.component}-config"
        # No `items`: every key is projected, so pipeline.yaml appears under the mount path.
        assert "items" not in source
        _find(manifests, "ConfigMap", source["name"])

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=200))
    def test_rendering_is_lossless_for_any_text(self, text: str) -> None:
        render = _render_module()
        manifest = render.render_configmap(render.TARGETS[0], text)
        assert yaml.safe_load(manifest)["data"][CONFIG_KEY] == text

    @pytest.mark.parametrize("text", [
        pytest.param("a: 1\n", id="one-newline"),
        pytest.param("a: 1", id="no-newline"),
        pytest.param("a: 1\n\n\n", id="trailing-blank-lines"),
        pytest.param("  indented: 1\nb: 2\n", id="indented-first-line"),
        pytest.param("x: 1   \n\n# c\n", id="trailing-spaces"),
    ])
    def test_rendering_uses_a_readable_literal_block(self, text: str) -> None:
        render = _render_module()
        manifest = render.render_configmap(render.TARGETS[0], text)
        assert re.search(rf"^  {re.escape(CONFIG_KEY)}: \|", manifest, re.MULTILINE), manifest
        assert yaml.safe_load(manifest)["data"][CONFIG_KEY] == text


# -- both workloads ---------------------------------------------------------------------------

class TestWorkloads:
    def test_args_are_our_cli(self, workload: Workload) -> None:
        # No `command:`: the image's ENTRYPOINT ["pipeline"] runs with these args.
        assert "command" not in workload.container
        args = _parser().parse_args(workload.container["args"])
        assert args.command == "run"
        assert not args.once
        mount_path, _ = workload.config_mount()
        assert args.config == f"{mount_path.rstrip('/')}/{CONFIG_KEY}"

    def test_config_mount_is_read_only(self, workload: Workload) -> None:
        mount_path, _ = workload.config_mount()
        assert workload.mounts[mount_path].get("readOnly") is True

    def test_api_binds_all_interfaces_on_the_container_port(self, workload: Workload) -> None:
        root = workload.resolved_root()
        assert root.api.enabled
        host, port = _api_port(root.api.address)
        assert host == "0.0.0.0", "probes and Prometheus reach the pod IP, not its loopback"
        assert port in workload.ports.values()

    def test_probes(self, workload: Workload) -> None:
        _, api_port = _api_port(workload.resolved_root().api.address)
        liveness = workload.container["livenessProbe"]["httpGet"]
        readiness = workload.container["readinessProbe"]["httpGet"]
        assert liveness["path"] == "/health"
        assert readiness["path"] == "/ready"
        assert workload.port_number(liveness["port"]) == api_port
        assert workload.port_number(readiness["port"]) == api_port

    def test_prometheus_annotations(self, workload: Workload) -> None:
        _, api_port = _api_port(workload.resolved_root().api.address)
        annotations = workload.pod_meta["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(api_port)
        assert annotations["prometheus.io/path"] == "/metrics"

    def test_node_name_from_the_downward_api(self, workload: Workload) -> None:
        source = workload.env_source("NODE_NAME")
        assert source["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"

    def test_grace_period_outlasts_the_shutdown_timeout(self, workload: Workload) -> None:
        shutdown_timeout = workload.resolved_root().shutdown_timeout
        assert workload.pod["terminationGracePeriodSeconds"] >= shutdown_timeout + 10

    def test_resources(self, workload: Workload) -> None:
        resources = workload.container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys()
        assert "memory" in resources["limits"]

    def test_data_dir_is_a_writable_mount(self, workload: Workload) -> None:
        data_dir = str(workload.resolved_root().data_dir)
        assert data_dir.startswith("/"), f"data_dir {data_dir!r} must be absolute in a pod"
        mount = workload.mount_for(data_dir)
        assert mount is not None, f"data_dir {data_dir} is not on a volume (the root file system is read-only)"
        assert not mount.get("readOnly", False)
        assert "hostPath" in workload.volumes[mount["name"]] or "emptyDir" in workload.volumes[mount["name"]]

    def test_locked_down_container(self, workload: Workload) -> None:
        security = workload.container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        assert workload.pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert workload.pod["automountServiceAccountToken"] is False
        assert not workload.container.get("privileged", False)
        assert workload.mount_for("/tmp") is not None

    def test_every_variable_without_default_is_set(self, workload: Workload) -> None:
        needed = {name for name, has_default in _variables(_config_text(workload.component)) if not has_default}
        missing = needed - workload.env().keys()
        assert not missing, f"{workload.component}: the config needs {sorted(missing)} with no default"

    def test_secrets_come_from_secrets(self, workload: Workload) -> None:
        for var in workload.container.get("env", []):
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", var["name"]):
                assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} must come from a Secret"

    def test_pipeline_validate_accepts_the_embedded_config(self, workload: Workload, manifests: list[dict[str, Any]],
                                                           tmp_path: Path) -> None:
        _, source = workload.config_mount()
        path = tmp_path / CONFIG_KEY
        path.write_text(_find(manifests, "ConfigMap", source["name"])["data"][CONFIG_KEY])
        # The pod's environment and nothing else for the variables the config reads ...
        referenced = {name for name, _ in _variables(path.read_text())}
        env = {k: v for k, v in os.environ.items() if k not in referenced}
        env.update(workload.env())
        # ... except the GeoIP databases, which come from a node volume (checked by
        # test_geoip_databases_are_mounted): MaxMind's test files of the same kind stand in.
        env.update(_geoip_stand_ins(path.read_text()))
        done = subprocess.run([*_pipeline_command(), "validate", "--config", str(path)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


GEOIP_TEST_DATA = [ROOT.parent / "shared" / "data" / "geoip", ROOT / "examples" / "geoip"]
GEOIP_STAND_INS = {"database": "GeoLite2-City-Test.mmdb", "asn_database": "GeoLite2-ASN-Test.mmdb"}


def _geoip_stand_ins(config_text: str) -> dict[str, str]:
    """{VAR: test database} for each geoip transform's `database: "${VAR:-...}"` in the config."""
    out: dict[str, str] = {}
    for model in (yaml.safe_load(config_text).get("transforms") or {}).values():
        if model.get("type") != "geoip":
            continue
        for key, filename in GEOIP_STAND_INS.items():
            value = model.get(key)
            if value is None:
                continue
            match = ENV_VAR.search(str(value))
            assert match, f"geoip {key}: {value!r} is not ${{VAR:-default}}, so a test cannot stand in for it"
            found = [d / filename for d in GEOIP_TEST_DATA if (d / filename).is_file()]
            assert found, f"{filename} is in none of {GEOIP_TEST_DATA}"
            out[match.group(1)] = str(found[0])
    return out


# -- the agent DaemonSet ---------------------------------------------------------------------

LOG_PATHS = ["/var/log/pods", "/var/log/containers", "/var/lib/docker/containers"]


class TestAgent:
    @pytest.mark.parametrize("host_path", LOG_PATHS)
    def test_log_folders_are_mounted_read_only_at_their_host_path(self, agent: Workload, host_path: str) -> None:
        # Same path inside: /var/log/containers/*.log are absolute symlinks into /var/log/pods,
        # and those into /var/lib/docker/containers on Docker nodes; they must resolve in the pod.
        mount = agent.mount_for(host_path)
        assert mount is not None, f"{host_path} is not mounted"
        assert mount.get("readOnly") is True
        assert agent.volumes[mount["name"]]["hostPath"]["path"] == mount["mountPath"]

    def test_geoip_databases_are_mounted(self, agent: Workload) -> None:
        config = load_config(CONFIGS["agent"], env=agent.env())
        paths = [path for model in config.transforms.values() if model.type == "geoip"
                 for path in (model.database, model.asn_database) if path]
        for path in paths:
            mount = agent.mount_for(path)
            assert mount is not None and mount.get("readOnly") is True, \
                f"GeoIP database {path} is not on a read-only volume of the pod"

    def test_only_data_dir_is_a_writable_host_path(self, agent: Workload) -> None:
        data_dir = str(agent.resolved_root().data_dir)
        for mount_path, mount in agent.mounts.items():
            volume = agent.volumes[mount["name"]]
            if "hostPath" in volume and not mount.get("readOnly", False):
                assert agent.mount_for(data_dir) is mount, f"{mount_path} is a writable host path"

    def test_checkpoints_survive_the_pod(self, agent: Workload) -> None:
        mount = agent.mount_for(str(agent.resolved_root().data_dir))
        assert mount is not None
        host = agent.volumes[mount["name"]]["hostPath"]
        assert host == {"path": "/var/lib/pipeline-agent", "type": "DirectoryOrCreate"}

    def test_every_included_path_is_mounted(self, agent: Workload) -> None:
        # The typed config, so a source's default `include` counts too.
        config = load_config(CONFIGS["agent"], env=agent.env())
        includes = [(name, pattern) for name, source in config.sources.items()
                    for pattern in getattr(source, "include", [])]
        assert includes, "the agent config has sources with `include` globs"
        for name, pattern in includes:
            mount = agent.mount_for(pattern)
            assert mount is not None and mount.get("readOnly") is True, \
                f"sources.{name}.include {pattern} is not under a read-only host mount"

    def test_runs_on_every_node(self, agent: Workload) -> None:
        assert {"operator": "Exists"} in agent.pod["tolerations"]

    def test_reads_root_owned_logs_without_capabilities(self, agent: Workload) -> None:
        security = agent.container["securityContext"]
        assert security["runAsUser"] == 0
        assert security["capabilities"]["drop"] == ["ALL"]

    def test_kafka_brokers(self, agent: Workload) -> None:
        assert agent.env().get("KAFKA_BROKERS")

    def test_rolling_update(self, agent: Workload) -> None:
        assert agent.manifest["spec"]["updateStrategy"]["type"] == "RollingUpdate"


# -- the processor Deployment and Service -----------------------------------------------------

class TestProcessor:
    def test_replicas_and_service_endpoints(self, processor: Workload, manifests: list[dict[str, Any]]) -> None:
        assert processor.manifest["spec"]["replicas"] == 2
        labels = processor.pod_meta["labels"]
        assert processor.manifest["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service = _find(manifests, "Service", "pipeline-processor")
        assert service["spec"]["selector"].items() <= labels.items()
        _, api_port = _api_port(processor.resolved_root().api.address)
        for port in service["spec"]["ports"]:
            assert processor.port_number(port["targetPort"]) == api_port

    @pytest.mark.parametrize("name", ["KAFKA_BROKERS", "ELASTICSEARCH_URL", "ALERTMANAGER_URL"])
    def test_service_addresses(self, processor: Workload, name: str) -> None:
        assert processor.env().get(name)

    def test_elasticsearch_password_from_a_secret(self, processor: Workload) -> None:
        ref = processor.env_source("ELASTICSEARCH_PASSWORD")["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "pipeline-elasticsearch", "key": "password"}

    def test_runs_as_the_image_user(self, processor: Workload) -> None:
        security = processor.pod["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == IMAGE_UID


# -- systemd ----------------------------------------------------------------------------------

def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd unit file: section -> key -> every value in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        assert not line.endswith("\\"), "keep unit lines unwrapped"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


UNIT = SYSTEMD / "pipeline.service"
SYSUSERS = SYSTEMD / "pipeline.conf"


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def _one(unit: dict[str, list[str]], key: str) -> str:
    assert len(unit.get(key, [])) == 1, f"{key} set {len(unit.get(key, []))} times"
    return unit[key][0]


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


class TestSystemdUnit:
    def test_notify_with_watchdog(self, unit: dict[str, list[str]]) -> None:
        assert _one(unit, "Type") == "notify"
        assert _one(unit, "NotifyAccess") == "main"
        assert _seconds(_one(unit, "WatchdogSec")) == 30

    def test_exec_start_is_our_cli(self, unit: dict[str, list[str]]) -> None:
        binary, *args = _one(unit, "ExecStart").split()
        assert binary == "/opt/pipeline/bin/pipeline"
        parsed = _parser().parse_args(args)
        assert (parsed.command, parsed.config, parsed.once) == ("run", "/etc/pipeline/pipeline.yaml", False)
        # ExecStartPre / the first ExecReload validate the same file first.
        for pre in [*unit["ExecStartPre"], unit["ExecReload"][0]]:
            binary, *args = pre.split()
            assert binary == "/opt/pipeline/bin/pipeline"
            checked = _parser().parse_args(args)
            assert (checked.command, checked.config) == ("validate", parsed.config)

    def test_reload_sends_hup_to_the_main_process(self, unit: dict[str, list[str]]) -> None:
        assert unit["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"

    def test_restart_policy(self, unit: dict[str, list[str]]) -> None:
        assert _one(unit, "Restart") == "on-failure"
        assert _one(unit, "RestartPreventExitStatus") == "2"  # bad config: restarting cannot help

    def test_stop_timeout_outlasts_the_shutdown_timeout(self, unit: dict[str, list[str]]) -> None:
        stop = _seconds(_one(unit, "TimeoutStopSec"))
        assert stop >= RootConfig().shutdown_timeout + 10
        # The config a host installs (config/agent.yaml) must not drain longer than systemd waits.
        raw = interpolate(yaml.safe_load(_config_text("agent")), {})
        assert stop >= RootConfig.model_validate(raw).shutdown_timeout + 10

    def test_user_and_state(self, unit: dict[str, list[str]]) -> None:
        assert (_one(unit, "User"), _one(unit, "Group")) == ("pipeline", "pipeline")
        assert _one(unit, "SupplementaryGroups") == "adm"
        assert _one(unit, "StateDirectory") == "pipeline"
        assert _one(unit, "ReadWritePaths") == "/var/lib/pipeline"
        assert int(_one(unit, "LimitNOFILE")) >= 65536

    @pytest.mark.parametrize(("key", "value"), [
        ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"), ("ProtectControlGroups", "yes"), ("LockPersonality", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"), ("CapabilityBoundingSet", ""),
    ])
    def test_hardening(self, unit: dict[str, list[str]], key: str, value: str) -> None:
        assert _one(unit, key) == value

    @pytest.fixture
    def verifiable_unit(self, tmp_path: Path) -> Path:
        """The unit with ExecStart pointing at this machine's `pipeline` (verify checks the binary exists)."""
        binary = _pipeline_command()
        if len(binary) != 1:
            pytest.fail("the `pipeline` console script is not installed beside this interpreter")
        path = tmp_path / "pipeline.service"
        path.write_text(UNIT.read_text().replace("/opt/pipeline/bin/pipeline", binary[0]))
        return path

    def test_systemd_analyze_verify(self, verifiable_unit: Path) -> None:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            pytest.skip("systemd-analyze is not installed (Debian package systemd); the key checks above ran")
        done = subprocess.run([analyze, "verify", "--man=no", str(verifiable_unit)],
                              capture_output=True, text=True, timeout=60)
        # verify exits 0 on unknown keys too, printing a warning: any output is a finding.
        assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), \
            done.stdout + done.stderr

    def test_systemd_analyze_security_exposure(self, verifiable_unit: Path) -> None:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            pytest.skip("systemd-analyze is not installed (Debian package systemd); the key checks above ran")
        done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(verifiable_unit)],
                              capture_output=True, text=True, timeout=60)
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout + done.stderr)
        assert match, done.stdout + done.stderr
        assert float(match.group(1)) <= 2.0, done.stdout[-3000:]


class TestSysusers:
    @pytest.fixture
    def sysroot(self, tmp_path: Path) -> Iterator[Path]:
        root = tmp_path / "root"
        (root / "etc" / "sysusers.d").mkdir(parents=True)
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\nadm:x:4:\n")
        shutil.copy(SYSUSERS, root / "etc" / "sysusers.d" / "pipeline.conf")
        yield root

    def test_creates_the_unit_user_in_adm(self, sysroot: Path) -> None:
        sysusers = shutil.which("systemd-sysusers")
        if sysusers is None:
            pytest.skip("systemd-sysusers is not installed (Debian package systemd)")
        done = subprocess.run([sysusers, f"--root={sysroot}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        passwd = {line.split(":")[0]: line.split(":") for line in (sysroot / "etc/passwd").read_text().splitlines()}
        groups = {line.split(":")[0]: line.split(":") for line in (sysroot / "etc/group").read_text().splitlines()}
        user = passwd["pipeline"]
        assert 0 < int(user[2]) < 1000, "a system uid"
        assert user[3] == groups["pipeline"][2], "primary group pipeline"
        assert user[5] == "/var/lib/pipeline" and user[6] == "/usr/sbin/nologin"
        assert "pipeline" in groups["adm"][3].split(",")
