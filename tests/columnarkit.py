"""Shared by the columnar tests and benchmarks/columnar.py: a card-transaction table, and a
count of the requests a moto server answers (its werkzeug access log)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc

SENSITIVE = ["pan", "ssn", "name"]


def card_table(rows: int) -> pa.Table:
    """id, pan (Luhn-agnostic 16 digits), ssn, name, amount, merchant: built in Arrow, so a
    million rows take a fraction of a second."""
    ids = pa.array(range(rows), pa.int64())
    text = pc.cast(ids, pa.string())
    return pa.table({
        "id": ids,
        "pan": pc.binary_join_element_wise("4111", pc.utf8_lpad(text, 12, "0"), ""),
        "ssn": pc.binary_join_element_wise("078-05-", pc.utf8_lpad(text, 4, "0"), ""),
        "name": pc.binary_join_element_wise("holder ", text, ""),
        "amount": pc.multiply(pc.cast(ids, pa.float64()), 0.01),
        "merchant": pc.binary_join_element_wise("m", pc.cast(pc.bit_wise_and(ids, 255),
                                                             pa.string()), ""),
    })


class KmsRequests(logging.Handler):
    """Counts the requests the moto server answers (each KMS call is one POST)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if '"POST / HTTP' in record.getMessage():
            self.count += 1


@contextmanager
def counting_kms_requests() -> Iterator[KmsRequests]:
    handler = KmsRequests()
    logger = logging.getLogger("werkzeug")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
