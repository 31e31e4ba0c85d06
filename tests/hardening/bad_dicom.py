"""The bad-DICOM corpus: one site drop holding every kind of broken or hostile file a hospital may send.

Provenance: every byte is synthetic, made here with pydicom (no real study). ``build_bad_drop(root)``
writes ``root/<site>/<night>/dicom/`` and a folder ``root/outside/`` beside the landing folder (the
target of the hostile symlinks), and returns a :class:`BadDrop` naming, for every input, the outcome it
must end in and a word its ledger reason must contain. Every identifying value is a unique token
``HZnnnnnX`` so a test can grep any output for it.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

SITE = "site01"
NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
UID_ROOT = "1.2.826.0.1.3680043.9.8888."


class Tokens:
    """Unique ASCII tokens (8 characters: valid in every string VR)."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self) -> str:
        token = f"HZ{len(self.made) + 1:05d}X"
        self.made.append(token)
        return token


@dataclass
class BadDrop:
    """The drop, the outside folder, and what must happen to each input (input path -> outcome)."""

    drop: Path
    outside: Path
    tokens: list[str]
    #: input-relative path -> (outcome, word the ledger reason must contain)
    expected: dict[str, tuple[str, str]] = field(default_factory=dict)


def ct_image(tok: Tokens, n: int, rows: int = 8) -> Dataset:
    """A small, valid CT image whose identifying values are all tokens."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}3.{n}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{UID_ROOT}3.{n}"
    ds.StudyInstanceUID = f"{UID_ROOT}1"
    ds.SeriesInstanceUID = f"{UID_ROOT}2"
    ds.PatientName = f"{tok()}^{tok()}"
    ds.PatientID = f"M{tok()}"
    ds.AccessionNumber = f"A{tok()}"
    ds.InstitutionName = tok()
    ds.PatientSex = "F"
    ds.Modality = "CT"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101010"
    ds.Manufacturer = "ACME"
    ds.SliceThickness = "3"
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.Rows = rows
    ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = ((np.arange(rows * rows, dtype=np.uint32) * 37 + n) % 4096).astype("<u2").tobytes()
    return ds


def encode(ds: Dataset, ts: str = ExplicitVRLittleEndian) -> bytes:
    """The file bytes of ``ds`` (preamble, file meta, dataset) in transfer syntax ``ts``."""
    ds.file_meta.TransferSyntaxUID = ts
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _deflated_bomb(tok: Tokens, n: int, inflated_mib: int) -> bytes:
    """A valid deflated file whose data set inflates to ``inflated_mib`` MiB (a 1:1000 zip bomb)."""
    ds = ct_image(tok, n)
    small = encode(ds, DeflatedExplicitVRLittleEndian)
    meta_end = 144 + struct.unpack_from("<L", small, 140)[0]
    body = zlib.decompress(small[meta_end:], -15)
    # an OB private-free element after everything else: (0009,0000)-free padding is not allowed, so
    # use trailing padding (FFFC,FFFC) OB, which the standard permits at the end of a data set
    pad = inflated_mib << 20
    tail = struct.pack("<HH2sHL", 0xFFFC, 0xFFFC, b"OB", 0, pad)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(body + tail) + compressor.flush(zlib.Z_FULL_FLUSH)
    # a full flush resets the window, so every later MiB of zeros deflates to the same bytes
    mib = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return small[:meta_end] + head + mib * inflated_mib + compressor.flush()


def _nested_bytes(depth: int, leaf: bytes) -> bytes:
    """AnatomicRegionSequence (0008,2218) nested ``depth`` times, undefined lengths, explicit VR LE.

    Written by hand: pydicom's own writer recurses per level and cannot produce what an attacker can.
    """
    opening = struct.pack("<HH2sHL", 0x0008, 0x2218, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    closing = struct.pack("<HHL", 0xFFFE, 0xE00D, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    return opening * depth + leaf + closing * depth


def build_bad_drop(root: Path, bomb_mib: int = 64, deep: int = 2000) -> BadDrop:
    """Write the bad-DICOM drop under ``root`` (see the module docstring)."""
    tok = Tokens()
    drop = root / "landing" / SITE / NIGHT
    dicom = drop / "dicom"
    dicom.mkdir(parents=True)
    outside = root / "outside"
    outside.mkdir()
    bad = BadDrop(drop=drop, outside=outside, tokens=tok.made)

    def put(name: str, data: bytes, outcome: str, reason: str = "") -> Path:
        path = dicom / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        bad.expected[f"dicom/{name}"] = (outcome, reason)
        return path

    good = encode(ct_image(tok, 1))
    put(f"{tok()}_good/IM0001.dcm", good, "deidentified")
    put("zero_byte.dcm", b"", "quarantined", "empty")
    put("truncated_header.dcm", good[: good.index(b"\x28\x00\x10\x00US") + 4], "quarantined", "truncated")
    put("truncated_pixels.dcm", good[: len(good) - 40], "quarantined", "truncated")
    # a preamble that is not followed by DICM (an arbitrary file renamed .dcm)
    put("wrong_preamble.dcm", b"MZ" + bytes(126) + b"DICX" + good[132:], "quarantined", "not DICOM")
    # a dual-personality preamble holding identifiers (PS3.10 7.5 allows any preamble): never copied
    other = encode(ct_image(tok, 8))
    put("tiff_preamble.dcm", (b"II*\x00" + tok().encode()).ljust(128, b"\x00") + other[128:], "deidentified")
    # no file meta at all: a bare implicit VR data set (older PACS exports)
    bare = ct_image(tok, 2)
    bare.file_meta = FileMetaDataset()
    buffer = io.BytesIO()
    bare.save_as(buffer, implicit_vr=True, little_endian=True)
    put("no_file_meta.dcm", buffer.getvalue(), "deidentified")
    # an explicit VR element whose VR is not a VR ("ZZ") in the middle of the header
    invalid = bytearray(encode(ct_image(tok, 9)))
    at = invalid.index(b"\x08\x00\x80\x00LO")  # InstitutionName
    invalid[at + 4 : at + 6] = b"ZZ"
    put("invalid_vr.dcm", bytes(invalid), "deidentified")  # read as UN, removed as unlisted
    # a header element that declares ~4 GiB (the file is a few hundred bytes)
    huge = bytearray(good)
    at = huge.index(b"\x08\x00\x80\x00LO")
    huge[at : at + 8] = struct.pack("<HH2sH", 0x0008, 0x0080, b"UN", 0)
    huge[at + 8 : at + 8] = struct.pack("<L", 0xFFFFFFF0)
    put("huge_length_header.dcm", bytes(huge), "quarantined", "")
    # pixel data that declares ~4 GiB
    huge = bytearray(good)
    at = huge.rindex(b"\xe0\x7f\x10\x00OW")
    huge[at + 8 : at + 12] = struct.pack("<L", 0xFFFFFFF0)
    put("huge_length_pixels.dcm", bytes(huge), "quarantined", "truncated")
    # sequences nested ``deep`` levels (a parser that recurses without bound dies here)
    plain = encode(ct_image(tok, 3))
    at = plain.index(b"\x10\x00\x10\x00PN")  # before PatientName: tags stay in ascending order
    name = tok().encode()
    leaf = struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", len(name)) + name
    put("deep_sequence.dcm", plain[:at] + _nested_bytes(deep, leaf) + plain[at:], "quarantined", "")
    # a deflated data set that inflates ~1000-fold
    put("deflate_bomb.dcm", _deflated_bomb(tok, 4, bomb_mib), "quarantined", "expands")
    # an archive with traversal and absolute names: cohortpool never unpacks archives
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.dcm", good)
        zf.writestr("/tmp/absolute.dcm", good)
    put("export.zip", archive.getvalue(), "quarantined", "not DICOM")
    # symlinks: to a DICOM file outside the landing folder, to a folder outside, and to /etc/passwd
    (outside / "elsewhere.dcm").write_bytes(encode(ct_image(tok, 5)))
    (outside / "folder").mkdir()
    (outside / "folder" / "IM0001.dcm").write_bytes(encode(ct_image(tok, 6)))
    links = {"link_file.dcm": outside / "elsewhere.dcm", "link_passwd.dcm": Path("/etc/passwd")}
    for name, target in links.items():
        os.symlink(target, dicom / name)
        bad.expected[f"dicom/{name}"] = ("quarantined", "symlink")
    os.symlink(outside / "folder", dicom / "link_folder")
    bad.expected["dicom/link_folder"] = ("quarantined", "symlink")
    # a named pipe: opening it for reading would block the run forever
    os.mkfifo(dicom / "pipe.dcm")
    bad.expected["dicom/pipe.dcm"] = ("quarantined", "not a regular file")
    # a second copy of the good file (a resend)
    put("resend/IM0001.dcm", good, "duplicate", "duplicate")
    # cut short inside a value: of the file meta group, of the data set (pydicom drops such an element)
    put("truncated_meta.dcm", good[:150], "quarantined", "truncated")
    at = good.index(b"\x20\x00\x0e\x00UI")  # SeriesInstanceUID
    put("truncated_value.dcm", good[: at + 12], "quarantined", "truncated")
    # values pydicom warns about, repeating them: an unknown character set, a UI that is not a UID, a
    # name component past 64 characters (the run must say none of it)
    noisy = ct_image(tok, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns here too: these values are meant to be bad
        noisy.SpecificCharacterSet = f"iso_ir {tok()}"  # not a code string: the output drops it
        noisy.FrameOfReferenceUID = f"1.2.840.10008/../{tok()}"
        noisy.PatientName = f"{tok()}^" + tok() * 9
        put("noisy_values.dcm", encode(noisy), "deidentified")
    # implicit VR copy of another good image (a valid variant, to prove the rest still flows)
    put("implicit.dcm", encode(ct_image(tok, 7), ImplicitVRLittleEndian), "deidentified")
    return bad
