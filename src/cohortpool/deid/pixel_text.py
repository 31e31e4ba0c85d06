"""Blank the text a compressed frame's codestream header can carry, in place, without decoding.

A JPEG codestream (DICOM's JPEG and JPEG-LS transfer syntaxes) may hold comment segments (COM, marker
FFFE) and application segments (APPn, FFE0-FFEF: Exif and XMP in APP1, Photoshop data in APP13, ...)
before its first scan; a JPEG 2000 or HTJ2K codestream may hold comment markers (COM, FF64) in its main
header and in its tile-part headers. Any of them can carry names, identifiers and dates typed at the
modality or written by a converter, and the pixel data is otherwise copied as read.

:func:`text_segments` finds, frame by frame (a fragment that starts with SOI or SOC starts a frame; a
frame may run over several fragments), the payload of every such segment, and the writers overwrite
those bytes with zeros: markers, lengths, fragment lengths and offset tables stay as they are, so the
image decodes to the same pixels. Kept as they are, because a decoder reads them and they hold no
free text: APP0 ``JFIF``, APP2 ``ICC_PROFILE``, APP14 ``Adobe`` and APP8 ``mrfx`` (JPEG-LS colour
transform). A J2K comment keeps its 2-byte registration value (Rcom); only its text is blanked.

Only headers are read (a few hundred bytes a frame, the entropy-coded data is skipped by its
lengths), so a file without such segments costs one walk over its fragment items. The walk stops at
the first byte that is not a well-formed marker segment (what follows cannot be located without
decoding). Not covered: segments between the scans of a progressive or multi-scan JPEG and bytes after
the end-of-image marker (both would need a walk through the entropy-coded data), JP2 file-format boxes
(not a conformant DICOM encapsulation), and text burned into the pixels themselves.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_right
from collections import Counter
from pathlib import Path
from typing import Any

#: (file offset, length, kind) of a payload to blank; kind names the segment (``JPEG COM``, ...), and is
#: empty for the rest of a segment that runs over into the next fragment (counted once)
Blank = tuple[int, int, str]

_UNDEFINED = 0xFFFFFFFF
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_HEADER = struct.Struct("<4sL")
_SOI = b"\xff\xd8"
_SOC = b"\xff\x4f\xff\x51"
#: transfer syntaxes whose pixel data cannot hold a JPEG or JPEG 2000 codestream, or whose data set
#: is not explicit VR little endian as stored (the element header is read as such here)
_NOT_SCANNED = frozenset(
    {
        "1.2.840.10008.1.2",  # implicit VR little endian
        "1.2.840.10008.1.2.2",  # explicit VR big endian
        "1.2.840.10008.1.2.1.99",  # deflated data set
        "1.2.840.10008.1.2.5",  # RLE lossless
        "1.2.840.10008.1.2.8.1",  # deflated image frame compression
        *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 113)),  # MPEG-2/4, H.264, HEVC, JPEG XL
    }
)
#: (APPn marker, identifier) of the application segments a decoder reads; their content is technical
_TECHNICAL = (
    (0xE0, b"JFIF\x00"),
    (0xE2, b"ICC_PROFILE\x00"),
    (0xE8, b"mrfx"),
    (0xEE, b"Adobe"),
)
#: JPEG markers without a length: TEM and the restart markers (fill bytes 0xFF are skipped apart)
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE
_J2K_COM, _J2K_SOT, _J2K_SOD = 0x64, 0x90, 0x93
_HEAD = 4096
#: marker steps per frame before a header is taken as malformed (a run of fill bytes, endless tiles)
_MAX_STEPS = 1 << 16


class _Frame:
    """One frame's codestream, spread over fragments of the file, read by offset in the codestream."""

    def __init__(self, buf: Any, pieces: list[tuple[int, int]]) -> None:
        self.buf = buf
        self.pieces = pieces
        self.starts: list[int] = []
        size = 0
        for _, length in pieces:
            self.starts.append(size)
            size += length
        self.size = size
        offset, length = pieces[0]
        #: the start of the first fragment, copied once: where a header usually lies whole
        self.head = bytes(buf[offset : offset + min(length, _HEAD)])

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes from ``pos`` (fewer at the end of the frame)."""
        if pos + n <= len(self.head):
            return self.head[pos : pos + n]
        return b"".join(bytes(self.buf[o : o + k]) for o, k in self.ranges(pos, n))

    def ranges(self, pos: int, n: int) -> list[tuple[int, int]]:
        """The file ranges (offset, length) of ``n`` codestream bytes from ``pos``."""
        out = []
        index = max(bisect_right(self.starts, pos) - 1, 0)
        end = min(pos + n, self.size)
        while pos < end and index < len(self.pieces):
            offset, length = self.pieces[index]
            inside = pos - self.starts[index]
            take = min(length - inside, end - pos)
            if take > 0:
                out.append((offset + inside, take))
                pos += take
            index += 1
        return out


def text_segments(buf: Any, syntax: str, start: int, end: int) -> list[Blank]:
    """Payloads of the text-carrying segments in the encapsulated pixel data element at ``start:end``.

    ``buf`` holds the file (an mmap or a memoryview of it); ``start`` is where the Pixel Data element's
    header begins and ``end`` where the element ends. Native (defined-length) pixel data, and the
    transfer syntaxes in :data:`_NOT_SCANNED`, give nothing. Sorted by offset; deterministic.
    """
    if syntax in _NOT_SCANNED or end - start < 12:
        return []
    if struct.unpack_from("<L", buf, start + 8)[0] != _UNDEFINED:
        return []
    found: list[Blank] = []
    frame: list[tuple[int, int]] = []
    pos, first = start + 12, True
    while pos + 8 <= end:
        tag, length = _ITEM_HEADER.unpack_from(buf, pos)
        if tag != _ITEM or length == _UNDEFINED or pos + 8 + length > end:
            break  # the sequence delimiter (or what the callers' walks have already refused)
        value = pos + 8
        pos = value + length
        if first:  # the Basic Offset Table
            first = False
            continue
        lead = bytes(buf[value : value + 4])
        if lead[:2] == _SOI or lead == _SOC:
            found.extend(_frame_segments(buf, frame))
            frame = []
        if frame or lead[:2] == _SOI or lead == _SOC:
            frame.append((value, length))
    found.extend(_frame_segments(buf, frame))
    return found


def _frame_segments(buf: Any, pieces: list[tuple[int, int]]) -> list[Blank]:
    if not pieces:
        return []
    frame = _Frame(buf, pieces)
    found = _j2k(frame) if frame.head[:4] == _SOC else _jpeg(frame)
    return [
        (o, k, kind if i == 0 else "")
        for pos, n, kind in found
        for i, (o, k) in enumerate(frame.ranges(pos, n))
    ]


def _jpeg(frame: _Frame) -> list[tuple[int, int, str]]:
    """COM and non-technical APPn payloads from SOI up to the first SOS (JPEG and JPEG-LS)."""
    found = []
    pos = 2
    for _ in range(_MAX_STEPS):
        head = frame.read(pos, 4)
        if len(head) < 2 or head[0] != 0xFF:
            break
        marker = head[1]
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
            continue
        if marker in (_SOS, _EOI):
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if len(head) < 4:
            break
        length = head[2] << 8 | head[3]
        if length < 2 or pos + 2 + length > frame.size:
            break
        payload, size = pos + 4, length - 2
        if size and marker == _COM:
            found.append((payload, size, "JPEG COM"))
        elif size and 0xE0 <= marker <= 0xEF and not _technical(marker, frame.read(payload, 12)):
            found.append((payload, size, f"JPEG APP{marker - 0xE0}"))
        pos += 2 + length
    return found


def _technical(marker: int, identifier: bytes) -> bool:
    return any(marker == m and identifier.startswith(i) for m, i in _TECHNICAL)


def _j2k(frame: _Frame) -> list[tuple[int, int, str]]:
    """COM text in the main header and in every tile-part header (JPEG 2000 and HTJ2K codestreams)."""
    found: list[tuple[int, int, str]] = []
    pos = _j2k_header(frame, 2, _J2K_SOT, found)
    for _ in range(_MAX_STEPS):
        if pos < 0:
            break
        sot = frame.read(pos, 12)  # SOT: marker, Lsot = 10, Isot, Psot, TPsot, TNsot
        if len(sot) < 12 or sot[:4] != b"\xff\x90\x00\x0a":
            break
        tile_part = struct.unpack_from(">L", sot, 6)[0]
        if _j2k_header(frame, pos + 12, _J2K_SOD, found) < 0 or tile_part < 12:
            break  # Psot 0: the last tile-part, running to the end of the codestream
        pos += tile_part
    return found


def _j2k_header(frame: _Frame, pos: int, stop: int, found: list[tuple[int, int, str]]) -> int:
    """Walk marker segments from ``pos`` to the ``stop`` marker; returns where it is, or -1."""
    for _ in range(_MAX_STEPS):
        head = frame.read(pos, 4)
        if len(head) < 2 or head[0] != 0xFF:
            return -1
        marker = head[1]
        if marker == stop:
            return pos
        if len(head) < 4:
            return -1
        length = head[2] << 8 | head[3]
        if length < 2 or pos + 2 + length > frame.size:
            return -1
        if marker == _J2K_COM and length > 4:  # Lcom, Rcom (kept: binary or Latin text), the text
            found.append((pos + 6, length - 4, "J2K COM"))
        pos += 2 + length
    return -1


def counts(blanks: list[Blank]) -> dict[str, int]:
    """Segments blanked, by kind (for the night's summary; a segment over two fragments counts once)."""
    seen = Counter(kind for _, _, kind in blanks if kind)
    return dict(sorted(seen.items()))


def update_digest(digest: Any, view: memoryview, start: int, end: int, blanks: list[Blank]) -> None:
    """Feed ``digest`` the bytes ``start:end`` of ``view`` as written: the blanked payloads as zeros."""
    pos = start
    for offset, length, _ in blanks:
        _update(digest, view, pos, offset)
        digest.update(bytes(length))
        pos = offset + length
    _update(digest, view, pos, end)


def _update(digest: Any, view: memoryview, start: int, end: int) -> None:
    part = view[start:end]
    try:
        digest.update(part)
    finally:
        part.release()


def blank_written(path: Path, shift: int, blanks: list[Blank]) -> None:
    """Overwrite each payload with zeros in the written file, where input offset + ``shift`` puts it."""
    if not blanks:
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset, length, _ in blanks:
            zeros = memoryview(bytes(length))
            at = offset + shift
            while zeros:
                written = os.pwrite(fd, zeros, at)
                zeros, at = zeros[written:], at + written
    finally:
        os.close(fd)
