"""Dockerfile, .dockerignore and scripts/install.

No Docker engine runs on the development machines or in CI, so the image is
never built here. These tests check what can be checked without one:

- the Dockerfile's instructions, read by a small line parser (stages, base
  image, the install step, user, entry point, port, health check, volume);
- the health check command itself, run against a real local HTTP server;
- the build context: every COPY source exists and survives .dockerignore;
- the builder stage's steps, replayed outside Docker: the context that
  .dockerignore lets through is copied to a temporary folder, `scripts/install`
  runs there into a fresh virtualenv (pip builds the project in an isolated
  build environment, as in the image, which needs PyPI like the image build
  does), and the installed `pipeline` entry point runs `version` and `schema`.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.cli import _parser
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL = ROOT / "scripts" / "install"
API_PORT = 9600
VOLUME = "/var/lib/pipeline"


# -- a small Dockerfile reader ------------------------------------------------------

@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the (joined) line

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.args
        return value


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.image}: no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split into stages of instructions; joins `\\` continuations, drops comments and blank lines."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            assert len(parts) in (1, 3), f"unexpected FROM: {line}"
            stages.append(Stage(parts[0], name))
            continue
        if keyword == "ARG" and not stages:
            continue
        assert stages, f"instruction before FROM: {line}"
        stages[-1].instructions.append(Instruction(keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for inst in stage.all("ENV"):
        for token in shlex.split(inst.args):
            key, sep, value = token.partition("=")
            assert sep, f"use the ENV key=value form: {inst.args}"
            env[key] = value
    return env


class TestParser:
    def test_reads_stages_and_continuations(self) -> None:
        text = "# c\nFROM a:1 AS b\nRUN x \\\n  && y\n\nFROM a:1\nUSER 5\n"
        parsed = parse_dockerfile(text)
        assert [(s.image, s.name) for s in parsed] == [("a:1", "b"), ("a:1", None)]
        assert parsed[0].instructions == [Instruction("RUN", "x && y")]
        assert parsed[1].last("USER").args == "5"


# -- the Dockerfile -------------------------------------------------------------------

class TestStages:
    def test_multi_stage_on_python_slim(self, stages: list[Stage]) -> None:
        assert len(stages) >= 2
        for stage in stages:
            assert re.fullmatch(r"python:3\.\d+-slim", stage.image), stage.image
        # The venv is copied across stages: its interpreter must be the same one.
        assert len({s.image for s in stages}) == 1

    def test_python_matches_requires_python(self, stages: list[Stage]) -> None:
        requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
        minimum = re.fullmatch(r">=\s*3\.(\d+)", requires)
        assert minimum, requires
        image_minor = int(re.fullmatch(r"python:3\.(\d+)-slim", stages[0].image).group(1))  # type: ignore[union-attr]
        assert image_minor >= int(minimum.group(1))

    def test_builder_runs_the_install_script(self, stages: list[Stage]) -> None:
        builder = next(s for s in stages if s.name == "builder")
        runs = [i.args for i in builder.all("RUN")]
        # Exactly the script, no extras: the image gets the default `.[embedded]`.
        assert "scripts/install" in runs
        # Nothing else installs Python packages, in any stage: CI and the image share one step.
        for stage in stages:
            for inst in stage.all("RUN"):
                assert "pip install" not in inst.args, inst.args
        assert _env(builder).get("PATH", "").startswith("/opt/pipeline/bin:")

    def test_final_stage_copies_the_venv_from_the_builder(self, final: Stage) -> None:
        copies = [i.args.split() for i in final.all("COPY")]
        assert ["--from=builder", "/opt/pipeline", "/opt/pipeline"] in copies
        assert _env(final).get("PATH", "").startswith("/opt/pipeline/bin:")

    def test_runs_as_the_unprivileged_pipeline_user(self, final: Stage) -> None:
        user = final.last("USER").args
        assert user not in ("root", "0") and not user.startswith(("0:", "root:"))
        setup = " ".join(i.args for i in final.all("RUN"))
        created = re.search(r"useradd\b.*?--uid (\d+)\b.*?\bpipeline\b", setup)
        assert created, "the final stage creates the user `pipeline`"
        uid = created.group(1)
        assert int(uid) >= 10000
        # USER is the uid of `pipeline`, without `:group` (which would drop supplementary groups).
        assert user in ("pipeline", uid)
        assert re.search(r"useradd\b.*--groups adm\b", setup), "pipeline is in adm to read root:adm 0640 logs"
        # The instruction that matters comes last: nothing after USER runs as root again.
        assert final.instructions.index(final.last("USER")) > max(
            final.instructions.index(i) for i in final.all("RUN"))

    def test_entrypoint_and_cmd(self, final: Stage) -> None:
        assert final.last("ENTRYPOINT").exec_form() == ["pipeline"]
        cmd = final.last("CMD").exec_form()
        assert cmd == ["run", "--config", "/etc/pipeline/pipeline.yaml"]
        args = _parser().parse_args(cmd)
        assert (args.command, args.config, args.once) == ("run", "/etc/pipeline/pipeline.yaml", False)

    def test_default_config_is_shipped_where_cmd_reads_it(self, final: Stage) -> None:
        copies = [i.args.split() for i in final.all("COPY")]
        assert ["config/local.yaml", "/etc/pipeline/pipeline.yaml"] in copies

    def test_exposes_the_api_port_and_binds_it(self, final: Stage) -> None:
        assert final.last("EXPOSE").args.split() == [str(API_PORT)]
        assert _env(final)["PIPELINE_API_ADDRESS"] == f"0.0.0.0:{API_PORT}"

    def test_data_dir_volume(self, final: Stage) -> None:
        assert final.last("VOLUME").args in (VOLUME, f'["{VOLUME}"]')
        # The shipped configs take data_dir from PIPELINE_DATA_DIR.
        assert _env(final)["PIPELINE_DATA_DIR"] == VOLUME
        setup = " ".join(i.args for i in final.all("RUN"))
        assert re.search(rf"install -d -o pipeline -g pipeline -m 07[05]0 {VOLUME}\b", setup), \
            "the volume belongs to the user that writes it"


@pytest.fixture(scope="module")
def command(final: Stage) -> list[str]:
    """The HEALTHCHECK's command, in exec form."""
    args = final.last("HEALTHCHECK").args
    options, sep, cmd = args.partition("CMD ")
    assert sep, "HEALTHCHECK uses CMD"
    assert "--interval=" in options and "--timeout=" in options
    return Instruction("CMD", cmd).exec_form()


class TestHealthcheck:
    def test_uses_python_not_curl(self, command: list[str]) -> None:
        assert command[:2] == ["python", "-c"]
        assert f"http://127.0.0.1:{API_PORT}/health" in command[2]

    @pytest.fixture
    def server(self) -> Iterator[tuple[str, dict[str, int]]]:
        state = {"status": 200}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = state["status"] if self.path == "/health" else 404
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
        httpd.shutdown()
        httpd.server_close()

    def _run(self, command: list[str], url: str) -> int:
        env = {**os.environ, "PIPELINE_HEALTH_URL": url}
        return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode

    def test_healthy_when_health_answers_200(self, command: list[str], server: tuple[str, dict[str, int]]) -> None:
        url, _ = server
        assert self._run(command, f"{url}/health") == 0

    def test_unhealthy_when_health_answers_503(self, command: list[str], server: tuple[str, dict[str, int]]) -> None:
        url, state = server
        state["status"] = 503
        assert self._run(command, f"{url}/health") != 0

    def test_unhealthy_when_nothing_listens(self, command: list[str]) -> None:
        assert self._run(command, f"http://127.0.0.1:{free_port()}/health") != 0

    def test_healthy_against_a_running_daemon(self, command: list[str], tmp_path: Path) -> None:
        port = free_port()
        config = tmp_path / "pipeline.yaml"
        config.write_text(
            f"data_dir: {tmp_path / 'data'}\n"
            f"api: {{address: '127.0.0.1:{port}'}}\n"
            "shutdown_timeout: 5s\n"
            "sources: {in: {type: stdin}}\n"
            "sinks: {out: {type: blackhole, inputs: [in]}}\n")
        script = Path(sys.executable).parent / "pipeline"
        program = [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]
        daemon = subprocess.Popen([*program, "run", "--config", str(config)], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}/health"
            deadline = time.monotonic() + 30
            while self._run(command, url) != 0:
                assert daemon.poll() is None, "the daemon exited"
                assert time.monotonic() < deadline, "the health check never passed"
                time.sleep(0.2)
        finally:
            daemon.terminate()
            _, stderr = daemon.communicate(timeout=30)  # closes stdin, ending the stdin source
        assert daemon.returncode == 0, stderr.decode()[-2000:]


# -- the build context ----------------------------------------------------------------

def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (is_exception, regex) in file order; the last matching pattern wins."""
    out = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i:end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        out.append((exception, re.compile(regex)))
    return out


def in_context(relpath: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent folders; the last match decides."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for exception, regex in patterns:
        if any(regex.fullmatch(p) for p in prefixes):
            included = exception
    return included


def context_files() -> list[str]:
    patterns = _ignore_patterns()
    files = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and in_context(rel, patterns):
            files.append(rel)
    return sorted(files)


class TestBuildContext:
    def test_ignore_matcher(self) -> None:
        patterns = [(False, re.compile("[^/]*")), (True, re.compile("keep")),
                    (False, re.compile("(?:.*/)?__pycache__"))]
        assert in_context("keep/a.py", patterns)
        assert not in_context("other/a.py", patterns)
        assert not in_context("keep/__pycache__/a.pyc", patterns)

    def test_context_holds_what_the_build_needs_and_nothing_private(self) -> None:
        files = context_files()
        assert "pyproject.toml" in files
        assert "scripts/install" in files
        for package in ("pipeline", "sinks", "parsers"):
            assert any(f.startswith(f"{package}/") and f.endswith(".py") for f in files), package
        for rel in files:
            assert not rel.startswith((".git/", "tests/", "data/", "deploy/", ".venv/")), rel
            assert "__pycache__" not in rel and not rel.endswith(".pyc"), rel

    def test_every_copy_source_is_in_the_context(self, stages: list[Stage]) -> None:
        files = context_files()
        for stage in stages:
            for inst in stage.all("COPY"):
                parts = inst.args.split()
                if any(p.startswith("--from=") for p in parts):
                    continue
                for source in [p for p in parts if not p.startswith("--")][:-1]:
                    if source == ".":
                        continue
                    source = source.rstrip("/")
                    assert source in files or any(f.startswith(source + "/") for f in files), \
                        f"COPY {source}: missing from the build context"

    def test_readme_is_in_the_context_when_pyproject_names_it(self) -> None:
        readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
        if isinstance(readme, str):
            assert in_context(readme, _ignore_patterns())
            assert (ROOT / readme).is_file(), f"pyproject names {readme}, which the build needs"


# -- scripts/install --------------------------------------------------------------------

@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `python3` first on PATH that records its arguments instead of installing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args"
    script = bin_dir / "python3"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, record


class TestInstallScript:
    def test_is_posix_sh_and_executable(self) -> None:
        assert os.access(INSTALL, os.X_OK)
        assert INSTALL.read_text().startswith("#!/bin/sh\n")
        sh = shutil.which("dash") or shutil.which("sh")
        assert sh
        assert subprocess.run([sh, "-n", str(INSTALL)]).returncode == 0

    @pytest.mark.parametrize(("args", "extras"), [
        pytest.param([], "embedded", id="default"),
        pytest.param(["test"], "embedded,test", id="test"),
        pytest.param(["embedded", "test"], "embedded,test", id="embedded-not-repeated"),
    ])
    def test_installs_the_project_with_extras(self, fake_python: tuple[dict[str, str], Path],
                                              args: list[str], extras: str) -> None:
        env, record = fake_python
        sh = shutil.which("dash") or "sh"
        done = subprocess.run([sh, str(INSTALL), *args], env=env, cwd="/", capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert record.read_text().splitlines() == ["-m", "pip", "install", f"{ROOT}[{extras}]"]

    @pytest.mark.parametrize("bad", ["", "te st", "x];rm", "a,b"])
    def test_rejects_bad_extra_names(self, fake_python: tuple[dict[str, str], Path], bad: str) -> None:
        env, record = fake_python
        done = subprocess.run([str(INSTALL), bad], env=env, capture_output=True, text=True)
        assert done.returncode == 2
        assert not record.exists()


class TestBuilderStageReplay:
    """The builder's `RUN scripts/install` and `RUN pipeline version && pipeline schema`, without Docker."""

    def test_install_from_the_build_context(self, tmp_path: Path) -> None:
        context = tmp_path / "context"
        for rel in context_files():
            target = context / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target)
        venv = tmp_path / "venv"
        # System site-packages supply the dependencies so the test does not download them;
        # PIP_NO_DEPS keeps pip from resolving them at all. What is tested is that the
        # context builds, installs, and gives a working entry point.
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
               "PIP_NO_DEPS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
        env.pop("PYTHONPATH", None)
        done = subprocess.run([str(context / "scripts" / "install")], env=env, cwd=context,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        entry = venv / "bin" / "pipeline"
        assert entry.read_text().startswith(f"#!{venv / 'bin' / 'python'}")
        # Run from an unrelated folder so nothing is imported from the checkout.
        version = subprocess.run([str(entry), "version"], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert version.returncode == 0, version.stderr
        schema = subprocess.run([str(entry), "schema"], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert schema.returncode == 0, schema.stderr
        json.loads(schema.stdout)
        where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pipeline, sinks, parsers; "
                                "print(pipeline.__file__, sinks.__file__, parsers.__file__)"],
                               env=env, cwd=tmp_path, capture_output=True, text=True)
        assert where.returncode == 0, where.stderr
        for module_file in where.stdout.split():
            assert module_file.startswith(str(venv)), module_file


class TestFinalStageReplay:
    """The final stage's files, ENV, WORKDIR and CMD laid out under a temporary root, then run.

    The image's default command (`run --config /etc/pipeline/pipeline.yaml`, the bundled
    config/local.yaml) runs here with `--once` over the bundled samples; everything it
    writes must land in the volume, nothing in the (read-only) working directory.
    """

    def test_default_command_runs_and_writes_only_to_the_volume(self, final: Stage, tmp_path: Path) -> None:
        root = tmp_path / "image"
        files = context_files()
        for inst in final.all("COPY"):
            parts = inst.args.split()
            if any(p.startswith("--from=") for p in parts):
                continue
            *sources, dest = [p for p in parts if not p.startswith("--")]
            for source in sources:
                source = source.rstrip("/")
                matched = [f for f in files if f == source or f.startswith(source + "/")]
                assert matched, f"COPY {source}: missing from the build context"
                for rel in matched:
                    if rel == source:  # a single file
                        target = root / dest.lstrip("/")
                        if dest.endswith("/"):
                            target = target / Path(rel).name
                    else:
                        target = root / dest.lstrip("/") / rel[len(source) + 1:]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, target)
        volume = root / VOLUME.lstrip("/")
        volume.mkdir(parents=True)
        workdir = root / final.last("WORKDIR").args.lstrip("/")
        before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))

        env = dict(os.environ)
        for key, value in _env(final).items():
            if key == "PATH":
                continue
            env[key] = str(root) + value if value.startswith(VOLUME) else value
        cmd = final.last("CMD").exec_form()
        config_index = cmd.index("--config") + 1
        cmd[config_index] = str(root / cmd[config_index].lstrip("/"))
        entry = final.last("ENTRYPOINT").exec_form()
        assert entry == ["pipeline"]
        script = Path(sys.executable).parent / "pipeline"
        program = [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]
        done = subprocess.run([*program, *cmd, "--once"], env=env, cwd=workdir,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert any(volume.iterdir()), "the default config wrote nothing to the volume"
        assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before, \
            "the default config wrote into the working directory, which is read-only in the image"
