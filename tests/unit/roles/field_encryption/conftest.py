"""Fixtures for the field_encryption role's modules: a moto KMS server on 127.0.0.1 only,
dummy AWS credentials, and the modules imported by path from plugins/modules."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from motokit import AWS_ENV, moto_server

ROOT = Path(__file__).resolve().parents[4]
LIBRARY = ROOT / "plugins" / "modules"


def load_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_m7guard_role_{name}", LIBRARY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return dict(AWS_ENV)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def kms(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client("kms", region_name="us-east-1", endpoint_url=moto_endpoint)


@pytest.fixture
def alias() -> str:
    return f"alias/m7guard-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def kms_key_module() -> ModuleType:
    return load_module("m7guard_kms_key")


@pytest.fixture(scope="session")
def wheel_module() -> ModuleType:
    return load_module("m7guard_wheel")
