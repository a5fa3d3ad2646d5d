"""The events the checks write and the audit reads: one definition (m7guard.results) for both
sides, and a line that is not an event is refused, naming what is wrong."""

from __future__ import annotations

import json

import pytest

from m7guard.results import (
    CollectedEvent,
    HostEvent,
    ResultEvent,
    ResultsError,
    event_line,
    read_event,
)

EVENTS = [
    CollectedEvent(hosts={"node1": ["KERN-001", "NET-002"]}),
    HostEvent(host="node1", error=None, groups=["all", "m7_nodes"], facts={"kernel": "6.1"},
              duration=0.25, waivers_raw="waivers: []\n"),
    HostEvent(host="ghost", error="host unreachable: refused"),
    ResultEvent(host="node1", rule="KERN-001", state="fail", message="kptr_restrict is 0",
                evidence={"running": "0"}, duration=0.01, nodeid="kernel.py::t[node1]", at=1.5),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_an_event_reads_back_as_written(event):
    line = event_line(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert read_event(line.decode()) == event


def test_the_line_is_sorted_json_with_the_type():
    line = event_line(EVENTS[3])
    assert json.loads(line)["type"] == "result"
    assert line.decode() == json.dumps(json.loads(line), sort_keys=True) + "\n"


def test_a_value_json_cannot_hold_is_written_as_text():
    event = ResultEvent(host="h", rule="R", state="error", message="", evidence={"b": b"x"},
                        duration=0.0)
    assert json.loads(event_line(event))["evidence"] == {"b": "b'x'"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "event line is not JSON"),
        ("[]", "unknown type None"),
        ('{"type": "verdict"}', "unknown type 'verdict'"),
        ('{"type": "host", "host": "n", "error": null, "secret": 1}',
         "host event: unknown fields secret"),
        ('{"type": "result", "host": "n", "rule": "R"}', "result event: .*missing"),
    ],
)
def test_a_line_that_is_not_an_event_is_refused(line, message):
    with pytest.raises(ResultsError, match=message):
        read_event(line)
