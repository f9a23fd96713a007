"""The benchmarks' processes start beside any other invsync on the machine."""

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import psutil

from benchmarks.harness import propagation_processes


@contextlib.contextmanager
def _held(*ports: int) -> Iterator[None]:
    """`ports` held while the block runs: by us, or already by another process."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            holder = stack.enter_context(socket.socket())
            with contextlib.suppress(OSError):  # held by another already
                holder.bind(("127.0.0.1", port))
                holder.listen()
        yield


def _listening_port(process: subprocess.Popen[bytes]) -> int:
    """The port `process` serves on, once it does (within 60 s)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            for connection in psutil.Process(process.pid).net_connections("tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    return int(connection.laddr.port)
        time.sleep(0.1)
    raise AssertionError(f"{process.args} served nothing (exit code {process.poll()})")


def test_the_propagation_harness_processes_start_while_the_default_metrics_ports_are_held(
    scratch_database, redis_url, tmp_path
):
    config = tmp_path / "invsync.toml"
    config.write_text("")
    with _held(9101, 9102), propagation_processes(scratch_database, redis_url, config) as started:
        ports = [_listening_port(process) for process in started]
        assert all(process.poll() is None for process in started)
    assert not {9101, 9102} & set(ports)
