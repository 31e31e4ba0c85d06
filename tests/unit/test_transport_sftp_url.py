"""`sftp://user@host[:port]/path`: what push accepts, and how known_hosts names the server."""

from __future__ import annotations

import pytest

from cohortpool.transport import DestinationError
from cohortpool.transport.sftp import parse_sftp_url


@pytest.mark.parametrize(
    ("url", "user", "host", "port", "path", "known_as"),
    [
        ("sftp://site01@hub.example.org/inbox", "site01", "hub.example.org", 22, "/inbox", "hub.example.org"),
        ("sftp://site01@hub.example.org:2222/inbox/", "site01", "hub.example.org", 2222, "/inbox",
         "[hub.example.org]:2222"),
        ("sftp://site01@hub.example.org", "site01", "hub.example.org", 22, "/", "hub.example.org"),
        ("sftp://site01@[::1]:2222/in%20box", "site01", "::1", 2222, "/in box", "[::1]:2222"),
    ],
)  # fmt: skip
def test_urls_are_parsed_with_openssh_host_names(url, user, host, port, path, known_as) -> None:
    parsed = parse_sftp_url(url)
    assert (parsed.user, parsed.host, parsed.port, parsed.path) == (user, host, port, path)
    assert parsed.known_hosts_name == known_as


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sftp://hub.example.org/inbox", "no user"),
        ("sftp://site01:secret@hub.example.org/inbox", "passwords are not accepted"),
        ("sftp://site01@hub.example.org:port/inbox", "port is not a number"),
        ("sftp://site01@hub.example.org/inbox?x=1", "unexpected"),
        ("ftp://site01@hub.example.org/inbox", "not an SFTP URL"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(DestinationError, match=message):
        parse_sftp_url(url)


def test_a_password_in_the_url_is_never_repeated() -> None:
    with pytest.raises(DestinationError) as refused:
        parse_sftp_url("sftp://site01:hunter2-secret@hub.example.org:port/inbox")
    assert "hunter2-secret" not in str(refused.value) and ":***@" in str(refused.value)
