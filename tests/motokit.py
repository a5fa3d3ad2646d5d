"""A moto server on 127.0.0.1 for tests that drive boto3 (or a playbook, or an audit) over
HTTP, with the dummy AWS settings that keep everything away from AWS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto_deployments import AWS_ENV

__all__ = ["AWS_ENV", "moto_server"]


@contextmanager
def moto_server() -> Iterator[str]:
    """The URL of a moto server listening on 127.0.0.1 only, on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://{host}:{port}"
    finally:
        server.stop()
