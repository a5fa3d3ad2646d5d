"""The VM's pid file is trusted only when it names this lab's own qemu."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from m7guard.lab.spec import DEFAULT_VM
from m7guard.lab.vm import VmProcess, port_free


def test_pid_of_an_unrelated_process_is_not_ours(tmp_path: Path) -> None:
    vm = VmProcess(DEFAULT_VM, tmp_path)
    vm.pidfile.write_text(str(os.getpid()))
    assert vm.pid() is None
    assert not vm.running()
    assert vm.stop() is False  # nothing was signalled
    assert not vm.pidfile.exists()


def test_pid_of_a_process_naming_the_pidfile_is_ours(tmp_path: Path) -> None:
    vm = VmProcess(DEFAULT_VM, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-pidfile", str(vm.pidfile)]
    )
    try:
        vm.pidfile.write_text(str(proc.pid))
        for _ in range(100):  # until the child has exec'd and its command line is its own
            if vm.pid() is not None:
                break
            time.sleep(0.05)
        assert vm.pid() == proc.pid
        assert vm.processes() == [proc.pid]
        assert vm.stop(timeout=5) is True
        assert proc.wait(timeout=5) != 0
    finally:
        proc.kill()


def test_garbage_or_missing_pidfile(tmp_path: Path) -> None:
    vm = VmProcess(DEFAULT_VM, tmp_path)
    assert vm.pid() is None
    vm.pidfile.write_text("not a pid")
    assert vm.pid() is None


def test_port_free_sees_a_listener() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_free(sock.getsockname()[1])


def test_port_free_after_a_listener_closed_its_connections_first() -> None:
    """A stopped vm1 closes the connections still open to it (an SSH master, Ansible's
    ControlPersist): its side of each stays on the port (FIN-WAIT-2, then TIME_WAIT). The next
    qemu may listen there (its port forward binds with SO_REUSEADDR, as this listener does),
    so the port is free; a plain bind, as port_free made before, says it is taken, and
    `lab reset vm1` refused to start vm1 again."""
    import socket

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as qemu's slirp does
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server_side, _ = listener.accept()
        server_side.close()  # the listening side closes first: its end goes to TIME_WAIT
        client.recv(1)
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # a listener: taken for any bind
        assert not port_free(port)
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the listener is gone, its connection's end is not
    assert port_free(port)
    client.close()
