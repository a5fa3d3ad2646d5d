"""The route unit of container nodes: one default route per family, via their own zone."""

from __future__ import annotations

from pathlib import Path

from m7guard.lab.manager import ROUTE_UNIT, route_unit, write_route_unit
from m7guard.lab.spec import LabSpec, spec_for


def test_the_unit_keeps_the_gateway_of_the_zone_the_node_is_reached_on() -> None:
    spec = LabSpec()
    for node in spec.containers:
        net = spec.network(node.ssh_zone)
        text = route_unit(net)
        assert f"ip -4 route add default via {net.gateway4}'" in text
        assert f"ip -6 route add default via {net.gateway6}'" in text
        assert "flush exact 0.0.0.0/0" in text and "flush exact ::/0" in text
    # another lab number, other gateways
    other = spec_for(3)
    assert route_unit(other.network("admin")) != route_unit(spec.network("admin"))


def test_written_enabled_and_rewritten_in_place(tmp_path: Path) -> None:
    net = LabSpec().network("admin")
    write_route_unit(tmp_path, net)
    write_route_unit(tmp_path, net)  # a second `lab up` writes it again
    unit = tmp_path / "etc/systemd/system" / ROUTE_UNIT
    link = tmp_path / "etc/systemd/system/multi-user.target.wants" / ROUTE_UNIT
    assert unit.read_text() == route_unit(net)
    assert link.is_symlink() and str(link.readlink()) == f"/etc/systemd/system/{ROUTE_UNIT}"
