"""A moto server on 127.0.0.1 holding two M7i deployments: one compliant, one not."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto_deployments import AWS_ENV, Deployment, seed


@pytest.fixture(scope="session")
def moto_aws() -> Iterator[Deployment]:
    import boto3
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield seed(boto3.client("ec2"), boto3.client("kms"), endpoint)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
