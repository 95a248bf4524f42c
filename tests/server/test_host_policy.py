"""The Host and Origin rules of the edge (pure): the request's own Host is never trusted."""

from __future__ import annotations

import pytest

from engine.server.http import LOOPBACK_NAMES, HostPolicy, host_name


@pytest.mark.parametrize(("value", "name"), [
    ("localhost:8000", "localhost"), ("LOCALHOST", "localhost"), ("[::1]:80", "[::1]"),
    ("[::1]", "[::1]"), ("127.0.0.1", "127.0.0.1"), ("evil.example:x", "evil.example:x"),
])
def test_host_name_drops_the_port(value: str, name: str) -> None:
    assert host_name(value) == name


def test_only_the_servers_names_are_hosts() -> None:
    policy = HostPolicy.for_server("127.0.0.1", LOOPBACK_NAMES, (), 8000)
    assert all(policy.host_allowed(h) for h in ("localhost:8000", "127.0.0.1", "[::1]:8000"))
    assert not any(policy.host_allowed(h) for h in
                   ("evil.example", "evil.example:8000", "", None, "127.0.0.1.evil.example"))
    lan = HostPolicy.for_server("10.0.0.5", (), (), 8000)
    assert lan.host_allowed("10.0.0.5:8000") and not lan.host_allowed("localhost")
    wildcard = HostPolicy.for_server("0.0.0.0", ("desk.example",), (), 8000)
    assert wildcard.names == frozenset({"desk.example"})
    assert HostPolicy(("*",), (), 1).host_allowed("anything.example")


def test_origins_name_one_of_our_hosts_on_our_port_or_are_listed() -> None:
    policy = HostPolicy.for_server("127.0.0.1", LOOPBACK_NAMES,
                                   ("https://desk.example.com",), 8000)
    assert policy.origin_allowed("http://127.0.0.1:8000")
    assert policy.origin_allowed("http://localhost:8000/")
    assert policy.origin_allowed("https://desk.example.com")
    for bad in ("http://evil.example", "http://evil.example:8000", "http://localhost:3000",
                "http://localhost", "null", "file://", "http://127.0.0.1:8000.evil.example",
                "http://localhost:8000/path", "ftp://localhost:8000"):
        assert not policy.origin_allowed(bad), bad
