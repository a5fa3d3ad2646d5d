"""Reading a host firewall: which sources an nftables ruleset lets reach a port.

`addrset` holds sets of IPv4/IPv6 addresses as sorted integer intervals; `nftables` evaluates
the JSON form of a ruleset (`nft -j list ruleset`) for one family, protocol and port and
answers with the set of source (or destination) addresses it accepts. The NET-* checks and
the network tests use it; it never talks to a host itself.
"""
