"""A results file without attestations renders byte for byte as it did before attestations
existed: every format's SHA-256 for the shared fixture, recorded from the renderers as they
were then. A deliberate change to a renderer's output updates the digest here."""

from __future__ import annotations

import hashlib

import pytest

from m7guard.reports import _renderers

from .conftest import make_results

BEFORE_ATTESTATIONS = {
    "json": "d176f6fd50f9e818106cb0d8c8951cb5bdf65bf367bd4d3fe48f93f1e0abf0eb",
    "html": "aecc8ba38b7a97ed4bb0a8fda57238f99a72105f63c60fd6c2c948e6f3dd7386",
    "junit": "34b5abfb65bb4ef684210891a600a6a690902a5e89e1c88a4cd9518de05d60be",
    "sarif": "453ca106a93994c3df9b227aaac49d9c2996fd999eb526c0e593a291952efc91",
    "oscal": "de25c39be91691fd93c21b3575c7cf25bbd93e340513b0d5b07224ced2cb6f37",
    "prom": "e56dd097b4567b38f1f1c78fea5c4f60b73241044d3c7df4cbad37949388527b",
    "poam": "56b2669d42cf82afdc4bfa0c07341afbcc7fc30421698823e31d6c44e17f104c",
}


@pytest.mark.parametrize("fmt", sorted(BEFORE_ATTESTATIONS))
def test_results_without_attestations_render_byte_identically(fmt: str) -> None:
    results = make_results()
    assert "attestations" not in results.data
    _, render = _renderers()[fmt]
    assert hashlib.sha256(render(results).encode()).hexdigest() == BEFORE_ATTESTATIONS[fmt]


def test_the_digests_see_a_change() -> None:
    """An attestation list, even empty, changes what is rendered (the digests are not blind)."""
    results = make_results(attestations=[])
    _, render = _renderers()["html"]
    assert hashlib.sha256(render(results).encode()).hexdigest() != BEFORE_ATTESTATIONS["html"]
