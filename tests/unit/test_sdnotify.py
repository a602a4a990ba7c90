"""pipeline/sdnotify.py: the sd_notify client, in-process and wired into a real `pipeline run`.

Every test binds a real AF_UNIX datagram socket (what systemd listens on) and
reads what arrives. The subprocess test is the one that proves the wiring in
pipeline/daemon.py: READY=1 once running, WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.sdnotify import Notifier, watchdog_loop


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sdn-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(short_dir / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def _messages(sock: socket.socket, timeout: float = 0.2) -> list[str]:
    """Every datagram waiting on `sock`, reading until it stays quiet for `timeout`."""
    out: list[str] = []
    sock.settimeout(timeout)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except TimeoutError:
        return out


class TestNotifier:
    def test_disabled_without_notify_socket(self) -> None:
        notifier = Notifier({})
        assert not notifier.enabled
        assert notifier.notify("READY=1") is False
        notifier.ready()  # no-op, no error
        assert notifier.watchdog_interval() is None
        assert notifier.start_watchdog() is None

    def test_ready_sends_ready_and_status(self, listener: tuple[socket.socket, str]) -> None:
        sock, path = listener
        notifier = Notifier({"NOTIFY_SOCKET": path})
        notifier.ready("running: 2 sources")
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=running: 2 sources"
        notifier.close()

    @pytest.mark.parametrize(("call", "expected"), [
        pytest.param(lambda n: n.stopping(), "STOPPING=1\nSTATUS=draining in-flight batches", id="stopping"),
        pytest.param(lambda n: n.watchdog(), "WATCHDOG=1", id="watchdog"),
        pytest.param(lambda n: n.status("two\nlines"), "STATUS=two lines", id="status-one-line"),
    ])
    def test_messages(self, listener: tuple[socket.socket, str], call: Callable[[Notifier], None],
                      expected: str) -> None:
        sock, path = listener
        notifier = Notifier({"NOTIFY_SOCKET": path})
        call(notifier)
        assert sock.recv(4096).decode() == expected
        notifier.close()

    def test_reloading_carries_monotonic_usec(self, listener: tuple[socket.socket, str]) -> None:
        sock, path = listener
        notifier = Notifier({"NOTIFY_SOCKET": path})
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))
        assert fields["RELOADING"] == "1"
        assert before <= int(fields["MONOTONIC_USEC"]) <= after
        notifier.close()

    def test_abstract_socket(self) -> None:
        name = f"pipeline-sdnotify-test-{os.getpid()}-{time.monotonic_ns()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        try:
            notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
            notifier.watchdog()
            assert sock.recv(4096) == b"WATCHDOG=1"
            notifier.close()
        finally:
            sock.close()

    def test_unsupported_address_is_disabled(self) -> None:
        assert not Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled

    def test_send_failure_never_raises_and_logs_once(self, short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        notifier = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody-listens.sock")})
        with caplog.at_level(logging.WARNING, logger="pipeline.sdnotify"):
            assert notifier.notify("READY=1") is False
            notifier.watchdog()
            notifier.stopping()
        assert len([r for r in caplog.records if r.name == "pipeline.sdnotify"]) == 1
        notifier.close()


class TestWatchdogInterval:
    @pytest.mark.parametrize(("env", "expected"), [
        pytest.param({"WATCHDOG_USEC": "30000000"}, 15.0, id="half-the-period"),
        pytest.param({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4242"}, 0.1, id="pid-is-ours"),
        pytest.param({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None, id="pid-is-another-process"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="garbage"),
        pytest.param({}, None, id="unset"),
    ])
    def test_interval(self, env: dict[str, str], expected: float | None) -> None:
        notifier = Notifier({"NOTIFY_SOCKET": "/run/systemd/notify", **env}, pid=4242)
        assert notifier.watchdog_interval() == expected

    def test_no_watchdog_without_notify_socket(self) -> None:
        assert Notifier({"WATCHDOG_USEC": "200000"}).watchdog_interval() is None

    async def test_watchdog_loop_pings_until_cancelled(self, listener: tuple[socket.socket, str]) -> None:
        sock, path = listener
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
        task = notifier.start_watchdog()
        assert task is not None
        await asyncio.sleep(0.1)  # 20 ms interval: about 5 pings
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        pings = _messages(sock)
        assert len(pings) >= 3
        assert set(pings) == {"WATCHDOG=1"}
        notifier.close()

    async def test_watchdog_loop_directly(self, listener: tuple[socket.socket, str]) -> None:
        sock, path = listener
        notifier = Notifier({"NOTIFY_SOCKET": path})
        task = asyncio.create_task(watchdog_loop(notifier, 0.01))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(_messages(sock)) >= 2
        notifier.close()


def _pipeline_command() -> list[str]:
    """The installed `pipeline` console script beside this interpreter (what systemd's ExecStart runs)."""
    script = Path(sys.executable).parent / "pipeline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


class TestDaemonUnderSystemd:
    """A real `pipeline run` as systemd would start it: NOTIFY_SOCKET and WATCHDOG_USEC in the environment.

    systemd sets WATCHDOG_PID to the main PID; we cannot know the child's PID
    before it starts, so we leave it unset, which the notifier accepts as "ours".
    """

    def test_ready_watchdog_stopping_in_order(self, listener: tuple[socket.socket, str], tmp_path: Path) -> None:
        sock, path = listener
        config = tmp_path / "pipeline.yaml"
        config.write_text(textwrap.dedent(f"""\
            data_dir: {tmp_path / "data"}
            api: {{enabled: false}}
            shutdown_timeout: 5s
            sources:
              in: {{type: stdin}}
            sinks:
              out: {{type: blackhole, inputs: [in]}}
            """))
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
        env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
        proc = subprocess.Popen([*_pipeline_command(), "run", "--config", str(config)], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        received: list[str] = []
        try:
            sock.settimeout(30)  # interpreter start and imports
            received.append(sock.recv(4096).decode())
            assert received[0].startswith("READY=1\n"), received
            proc.stdin.write(b"a line\nanother line\n")
            proc.stdin.flush()
            sock.settimeout(5)
            while "WATCHDOG=1" not in received:
                received.append(sock.recv(4096).decode())
            proc.send_signal(signal.SIGTERM)
            while not any(m.startswith("STOPPING=1") for m in received):
                received.append(sock.recv(4096).decode())
            # The stdin source waits in a blocking read: communicate() closes its
            # input, which ends that read so the drain completes.
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        kinds = [m.split("=", 1)[0] for m in received]
        assert kinds[0] == "READY"
        assert kinds.index("WATCHDOG") < kinds.index("STOPPING")
        assert kinds.count("READY") == 1
        assert received[0] == "READY=1\nSTATUS=running: 1 sources, 1 sinks"
