"""Pipelined SFTP writes whose every reply is checked.

SFTP (draft-ietf-secsh-filexfer-02, section 6.4) answers each WRITE request with a STATUS. Waiting for
each answer before the next write makes a transfer latency-bound; paramiko's ``set_pipelined`` stops
waiting, but the answers still in flight when the file is closed are read and dropped, so a write the
server refused (a full disk, a quota) would pass unnoticed and the file would be renamed into place short.

This writer keeps up to :data:`IN_FLIGHT` writes outstanding (about the SSH channel's 2 MiB window),
routes every answer to itself and raises on the first failure. Each write carries as many bytes as fit
in one SSH channel packet (paramiko splits anything larger into a full packet and a tiny one, doubling the
packet count). It uses paramiko's request plumbing (``_async_request``/``_read_response``), which is not
public API: the pin ``paramiko>=5.1,<6`` and the SFTP tests (``tests/integration/test_transport_sftp.py``,
including a server that refuses every write) guard it.
"""

from __future__ import annotations

from typing import Any

from paramiko.sftp import CMD_STATUS, CMD_WRITE, SFTP_OK, int64
from paramiko.sftp_client import SFTPClient
from paramiko.sftp_file import SFTPFile

#: outstanding writes at most (x ~32 KiB = the channel window OpenSSH opens for a session)
IN_FLIGHT = 64
#: paramiko keeps this many bytes of each channel packet for its own framing
_CHANNEL_MARGIN = 64
#: an SFTP WRITE's bytes around its data: length, type, request id, handle length, offset, data length
_WRITE_OVERHEAD = 4 + 1 + 4 + 4 + 8 + 4


class WriteRefusedError(OSError):
    """The server answered a WRITE with an error status."""


class PipelinedWriter:
    """Write a file sequentially through an open :class:`paramiko.SFTPFile`, pipelined and checked.

    Call :meth:`write` with blocks of any size, then :meth:`finish`, which waits for every answer; close
    the file afterwards.
    """

    def __init__(self, sftp: SFTPClient, handle: SFTPFile) -> None:
        # the request plumbing is not in paramiko's stubs (private): typed as Any on purpose
        self._sftp: Any = sftp
        self._handle: bytes = bytes(handle.handle)  # type: ignore[call-overload]  # stubs: SFTPHandle
        packet = self._sftp.sock.out_max_packet_size - _CHANNEL_MARGIN
        self.chunk = max(4096, packet - _WRITE_OVERHEAD - len(self._handle))
        self._offset = 0
        self._pending = 0
        self._error: str | None = None

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), self.chunk):
            while self._pending >= IN_FLIGHT:
                self._sftp._read_response()
                self._raise_if_refused()
            piece = data[start : start + self.chunk]
            self._sftp._async_request(self, CMD_WRITE, self._handle, int64(self._offset), piece)
            self._pending += 1
            self._offset += len(piece)

    def finish(self) -> None:
        """Wait for the answer to every write; raise :class:`WriteRefusedError` on the first refusal."""
        while self._pending:
            self._sftp._read_response()
        self._raise_if_refused()

    # paramiko delivers the answer to a request made with ``_async_request(self, ...)`` here
    def _async_response(self, kind: int, message: Any, number: int) -> None:
        self._pending -= 1
        if kind != CMD_STATUS:
            self._error = self._error or f"unexpected reply {kind} to a write"
            return
        code = message.get_int()
        if code != SFTP_OK and self._error is None:
            self._error = f"the server refused a write (status {code}: {message.get_text()})"

    def _raise_if_refused(self) -> None:
        if self._error is not None:
            raise WriteRefusedError(self._error)
