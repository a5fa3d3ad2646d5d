"""The VM's pid file is trusted only when it names this lab's own qemu."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
