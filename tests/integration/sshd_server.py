"""A real OpenSSH server (Debian's ``openssh-server``) on loopback for the transport tests and benchmark.

Key-only authentication, ``internal-sftp`` forced (no shell), host key and client key generated per
server. Run as root (as in CI) the login is chrooted: ``ChrootDirectory`` must be owned by root and no
path component above it writable by anyone else, which rules out the 1777 ``/tmp``, so the chroot lives in
a fresh folder under ``/run`` and is removed afterwards. Run as another user, sshd cannot chroot or log in
anyone but that user: the server then runs unprivileged without a chroot (:attr:`SshServer.chrooted` is
False and the chroot test skips with that reason).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
#: the privilege-separation folder sshd insists on when started as root (Debian's service creates it)
PRIVSEP_DIR = Path("/run/sshd")


def missing_tools() -> str | None:
    """Why the SSH tests cannot run here, or None."""
    for tool in ("ssh-keygen", "scp"):
        if shutil.which(tool) is None:
            return f"needs OpenSSH's {tool} (apt-get install openssh-client openssh-server; .ci/run does)"
    if not SSHD.exists():
        return "needs /usr/sbin/sshd (apt-get install openssh-server; .ci/run installs it)"
    return None


@dataclass
class SshServer:
    """A running sshd: where it listens, who logs in with which key, and where the files land."""

    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key: Path
    #: the login's file system root as seen from outside (the chroot, or / without one)
    root: Path
    #: the writable folder inside the login, as the client names it (``/inbox``)
    remote_inbox: str
    chrooted: bool
    process: subprocess.Popen[bytes] = field(repr=False)
    log: Path = field(repr=False)

    def sessions(self) -> list[int]:
        """PIDs of the sshd processes serving connections now (children of the listener): killing them
        drops those connections, as a network failure would."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    @property
    def inbox(self) -> Path:
        """The inbox folder on this machine's file system (what the hub's ``receive`` reads)."""
        return self.root / self.remote_inbox.lstrip("/")

    def url(self, path: str | None = None) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path or self.remote_inbox}"

    def scp_command(self, sources: list[Path], remote_dir: str) -> list[str]:
        """scp with this server's key and known_hosts, recursive, quiet (the benchmark's peer)."""
        return [
            "scp", "-q", "-r", "-B", "-P", str(self.port), "-i", str(self.client_key),
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            *map(str, sources), f"{self.user}@127.0.0.1:{remote_dir}",
        ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A new passphrase-less key pair at ``path`` / ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "cohortpool-test", "-f", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


def write_known_hosts(path: Path, port: int, host_key: Path) -> None:
    """A known_hosts file naming ``[127.0.0.1]:port`` with the public half of ``host_key``."""
    kind, blob = Path(f"{host_key}.pub").read_text(encoding="utf-8").split()[:2]
    path.write_text(f"[127.0.0.1]:{port} {kind} {blob}\n", encoding="utf-8")


def _config(
    work: Path, port: int, host_key: Path, authorized: Path, user: str, chroot: Path | None, sftp: str
) -> Path:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the key files live in a test folder, not in a home directory
        f"AllowUsers {user}",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "PermitTTY no",
        f"Subsystem sftp internal-sftp {sftp}",
        f"ForceCommand internal-sftp {sftp}",
        "LogLevel VERBOSE",
    ]
    if chroot is not None:
        lines.append(f"ChrootDirectory {chroot}")
    config = work / "sshd_config"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@contextmanager
def ssh_server(work: Path, sftp_options: str = "") -> Iterator[SshServer]:
    """Start sshd for the current user on a free loopback port; stop it and remove the chroot after.

    ``work`` holds the keys, the configuration and the log; the files pushed land in the login's
    ``/inbox`` (:attr:`SshServer.inbox`). ``sftp_options`` go to ``internal-sftp`` (e.g. ``-P write`` to
    refuse every write request).
    """
    work.mkdir(parents=True, exist_ok=True)
    host_key = keygen(work / "host_ed25519")
    client_key = keygen(work / "client_ed25519")
    authorized = work / "authorized_keys"
    shutil.copyfile(f"{client_key}.pub", authorized)
    as_root = os.geteuid() == 0
    user = "root" if as_root else getpass.getuser()
    chroot: Path | None = None
    if as_root:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        chroot = Path(tempfile.mkdtemp(prefix="cohortpool-sftp-", dir="/run"))
        chroot.chmod(0o755)
        (chroot / "inbox").mkdir()
        root = chroot
        remote_inbox = "/inbox"
    else:
        root = Path("/")
        (work / "inbox").mkdir()
        remote_inbox = str(work / "inbox")
    try:
        for _attempt in range(3):  # a port found free can be taken before sshd binds it
            port = free_port()
            config = _config(work, port, host_key, authorized, user, chroot, sftp_options)
            log = work / f"sshd-{port}.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log_file, stderr=subprocess.STDOUT
                )
            if _listening(port, process):
                break
            _stop(process)
        else:
            raise RuntimeError(f"sshd did not start in 3 attempts; see the logs in {work}")
        known_hosts = work / "known_hosts"
        write_known_hosts(known_hosts, port, host_key)
        server = SshServer(
            port, user, client_key, known_hosts, host_key, root, remote_inbox,
            chroot is not None, process, log,
        )  # fmt: skip
        try:
            yield server
        finally:
            _stop(process)
    finally:
        if chroot is not None:
            shutil.rmtree(chroot, ignore_errors=True)


def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
