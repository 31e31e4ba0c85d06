"""An SFTP destination through paramiko: key-only login, host keys checked against known_hosts.

Why paramiko itself and not fsspec's SFTP class: fsspec's class accepts any host key (auto-add) and
never reads known_hosts. Here a host key that is not in known_hosts, or differs from the one there, is
refused before a byte is sent (:class:`~cohortpool.transport.errors.HostKeyError`), and no key is ever
added: the hub's key reaches a site out of band (docs/deploy.md).

Speed: paramiko's own pipelined ``SFTPFile.write`` does not check the server's replies to the writes
still in flight when the file is closed (they are read and dropped), so a write the hub failed (a full
disk) could go unnoticed. :mod:`cohortpool.transport.sftp_write` pipelines the writes itself, checks
every reply, and sizes each write to fit one SSH packet.
"""

from __future__ import annotations

import contextlib
import errno
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paramiko

from cohortpool.transport.destination import checked_blocks
from cohortpool.transport.errors import DestinationError, HostKeyError, SubmissionDamagedError, TransientError
from cohortpool.transport.manifest import ListedFile
from cohortpool.transport.sftp_write import PipelinedWriter

#: seconds to wait for the TCP connection, the server's banner, authentication, and any one reply
TIMEOUT = 60.0
#: SSH's own default port: known_hosts names other ports as ``[host]:port``
SSH_PORT = 22
#: AES-GCM first: one OpenSSL call encrypts and authenticates a packet, where AES-CTR + HMAC-SHA2 takes
#: two (HMAC was the largest single cost of a profiled push); the rest of paramiko's order follows
_FIRST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class SftpUrl:
    """``sftp://user@host[:port]/path``, parsed."""

    user: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp://{self.user}@{host}:{self.port}{self.path}"

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this server (OpenSSH's convention)."""
        return self.host if self.port == SSH_PORT else f"[{self.host}]:{self.port}"


def parse_sftp_url(text: str) -> SftpUrl:
    """Parse a destination URL; raise :class:`DestinationError` (one line saying what to write)."""
    parts = urlsplit(text)
    if parts.password is not None:  # never echoed back: the message would put it in a log
        text = text.replace(f":{parts.password}@", ":***@", 1)
    example = "sftp://user@host[:port]/path"
    try:
        port = parts.port or SSH_PORT
    except ValueError as exc:
        raise DestinationError(f"{text}: the port is not a number; write {example}") from exc
    if parts.scheme != "sftp" or not parts.hostname:
        raise DestinationError(f"{text}: not an SFTP URL; write {example}")
    if not parts.username:
        raise DestinationError(f"{text}: no user; write {example} (the site's SFTP account at the hub)")
    if parts.password is not None:
        raise DestinationError(f"{text}: passwords are not accepted; the hub takes key-based logins only")
    if parts.query or parts.fragment:
        raise DestinationError(f"{text}: unexpected ?query or #fragment; write {example}")
    path = unquote(parts.path) or "/"
    return SftpUrl(unquote(parts.username), parts.hostname, port, path.rstrip("/") or "/")


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    """Refuse a server whose host key known_hosts does not hold (never add it)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        shown = ", ".join(map(str, self.files)) or "no known_hosts file"
        raise HostKeyError(
            f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in {shown}: refused. "
            "Check the fingerprint with the hub's administrator, then add the hub's line to known_hosts"
        )


def default_known_hosts() -> list[Path]:
    """The files OpenSSH reads by default: the user's, then the system's."""
    return [Path.home() / ".ssh" / "known_hosts", Path("/etc/ssh/ssh_known_hosts")]


def connect(
    url: SftpUrl,
    known_hosts: list[Path] | None = None,
    identity: Path | None = None,
    timeout: float = TIMEOUT,
) -> SftpDestination:
    """Log in with a key and open an SFTP session, refusing unknown or changed host keys.

    Parameters
    ----------
    known_hosts
        Files of trusted host keys (OpenSSH format, hashed names too); default the user's and the
        system's, as ``ssh`` reads them. Only existing files are read; none existing refuses every server.
    identity
        The private key to log in with; default the SSH agent and ``~/.ssh/id_*``, as ``ssh`` would.
    """
    files = [p for p in (known_hosts if known_hosts is not None else default_known_hosts()) if p.is_file()]
    client = paramiko.SSHClient()
    for file in files:
        try:
            client.load_system_host_keys(str(file))  # read-only: never written back
        except (OSError, paramiko.SSHException) as exc:
            raise DestinationError(f"{file}: cannot read known_hosts ({exc})") from exc
    client.set_missing_host_key_policy(_RefuseUnknownHost(files))
    try:
        client.connect(
            url.host,
            port=url.port,
            username=url.user,
            key_filename=str(identity) if identity is not None else None,
            look_for_keys=identity is None,
            allow_agent=identity is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            transport_factory=_transport,
        )
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"host key of {url.known_hosts_name} CHANGED ({exc.key.get_name()} {exc.key.fingerprint}; "
            f"known_hosts has {exc.expected_key.fingerprint}): refused. It may be an attack or a reinstalled "
            "hub: confirm the new fingerprint with the hub's administrator before replacing the line"
        ) from None
    except paramiko.PasswordRequiredException as exc:
        client.close()
        raise DestinationError(
            f"{identity or 'the SSH key'} is passphrase-protected: load it into ssh-agent or give an "
            "unencrypted deploy key with --identity"
        ) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise DestinationError(
            f"{url}: login refused for {url.user} ({exc}); is this site's public key in the hub's "
            "authorized_keys for that account?"
        ) from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        client.close()
        raise TransientError(f"{url}: cannot connect ({exc})") from exc
    try:
        session = client.open_sftp()
        channel = session.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        client.close()
        raise TransientError(f"{url}: the SFTP subsystem did not start ({exc})") from exc
    try:
        return SftpDestination(url, client, session)
    except BaseException:
        client.close()
        raise


def _transport(sock: Any, **options: Any) -> paramiko.Transport:
    """paramiko's transport, asking for AES-GCM first when the server offers it."""
    transport = paramiko.Transport(sock, **options)
    security = transport.get_security_options()
    offered = tuple(security.ciphers)
    security.ciphers = tuple(c for c in _FIRST_CIPHERS if c in offered) + tuple(
        c for c in offered if c not in _FIRST_CIPHERS
    )
    return transport


class SftpDestination:
    """A folder on an SFTP server (OpenSSH's ``internal-sftp``, chrooted per site at the hub)."""

    def __init__(self, url: SftpUrl, client: paramiko.SSHClient, session: paramiko.SFTPClient) -> None:
        self.url = url
        self.description = str(url)
        self._client = client
        self._sftp = session
        with self._errors(""):
            try:
                info = session.stat(url.path)
            except FileNotFoundError:
                raise DestinationError(
                    f"{url}: no such folder on the server; the hub's administrator makes it (docs/deploy.md)"
                ) from None
        if info.st_mode is None or not stat.S_ISDIR(info.st_mode):
            raise DestinationError(f"{url}: not a folder on the server")

    def _path(self, path: str) -> str:
        return f"{self.url.path.rstrip('/')}/{path}" if path else self.url.path

    @contextlib.contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """Translate paramiko's errors: a dead connection or a failed server operation is retried; a
        permission problem is the hub's configuration (exit 2)."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, SubmissionDamagedError, DestinationError):
            raise
        except (TimeoutError, EOFError, paramiko.SSHException, ConnectionError) as exc:
            raise TransientError(f"{self.url}: connection lost ({exc or type(exc).__name__})") from exc
        except OSError as exc:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                raise TransientError(f"{self.url}: connection lost ({exc})") from exc
            if exc.errno == errno.EACCES:
                raise DestinationError(
                    f"{self.url}: permission denied on {self._path(path)}; the hub's administrator must "
                    "let this account write there (docs/deploy.md)"
                ) from exc
            raise TransientError(f"{self.url}: the server failed on {self._path(path)} ({exc})") from exc

    def read_bytes(self, path: str) -> bytes | None:
        with self._errors(path):
            try:
                with self._sftp.open(self._path(path), "rb") as handle:
                    handle.prefetch()
                    data: bytes = handle.read()
                    return data
            except FileNotFoundError:
                return None

    def files_under(self, path: str) -> dict[str, int] | None:
        found: dict[str, int] = {}
        with self._errors(path):
            try:
                pending = [(self._path(path), "")]
                while pending:
                    folder, prefix = pending.pop()
                    for entry in self._sftp.listdir_attr(folder):
                        if entry.st_mode is not None and stat.S_ISDIR(entry.st_mode):
                            pending.append((f"{folder}/{entry.filename}", f"{prefix}{entry.filename}/"))
                        else:
                            found[prefix + entry.filename] = entry.st_size or 0
            except FileNotFoundError:
                if not found and not self.exists(path):
                    return None
                raise
        return found

    def makedirs(self, path: str) -> None:
        built = ""
        for part in path.split("/"):
            built = f"{built}/{part}" if built else part
            self.mkdir(built)

    def mkdir(self, path: str) -> None:
        with self._errors(path):
            try:
                self._sftp.mkdir(self._path(path))
            except OSError:
                # OpenSSH answers "failure" for an existing folder: anything else shows at the next step
                if not self.exists(path):
                    raise

    def upload(self, source: Path, path: str, listed: ListedFile, on_bytes: Callable[[int], None]) -> None:
        with self._errors(path), self._sftp.open(self._path(path), "wb") as handle:
            writer = PipelinedWriter(self._sftp, handle)
            for data in checked_blocks(source, listed):
                writer.write(data)
                on_bytes(len(data))
            writer.finish()

    def write_bytes(self, path: str, data: bytes) -> None:
        with self._errors(path), self._sftp.open(self._path(path), "wb") as handle:
            writer = PipelinedWriter(self._sftp, handle)
            writer.write(data)
            writer.finish()

    def replace(self, source: str, target: str) -> None:
        with self._errors(target):
            try:
                self._sftp.posix_rename(self._path(source), self._path(target))
            except FileNotFoundError as exc:
                raise TransientError(f"{self.url}: {source} vanished (is another push running?)") from exc

    def rename_dir(self, source: str, target: str) -> None:
        with self._errors(target):
            if self.exists(target):
                raise FileExistsError(errno.EEXIST, "exists", target)
            try:
                self._sftp.rename(self._path(source), self._path(target))
            except OSError as exc:
                if not self.exists(source):
                    raise FileNotFoundError(errno.ENOENT, "gone", source) from exc
                raise

    def exists(self, path: str) -> bool:
        with self._errors(path):
            try:
                self._sftp.lstat(self._path(path))
            except FileNotFoundError:
                return False
        return True

    def remove_tree(self, path: str) -> None:
        with self._errors(path):
            try:
                info = self._sftp.lstat(self._path(path))
            except FileNotFoundError:
                return
            if info.st_mode is None or not stat.S_ISDIR(info.st_mode):
                self._sftp.remove(self._path(path))
                return
            for entry in self._sftp.listdir_attr(self._path(path)):
                self.remove_tree(f"{path}/{entry.filename}")
            self._sftp.rmdir(self._path(path))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection must not hide the real error
            self._sftp.close()
        self._client.close()

    def __enter__(self) -> SftpDestination:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
