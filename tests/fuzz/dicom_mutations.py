"""Valid DICOM files and the hypothesis strategies that break them.

Provenance: every byte is synthetic, made here with pydicom. The bases are small CT images, in explicit
VR little endian (the de-identifier's raw-bytes fast path) and implicit VR little endian (its pydicom
path), whose identifying values are unique tokens ``FZnnnnX`` (in the patient module, a sequence and a
private block), so any output can be searched for them.

Mutations act on the encoded bytes, as a broken export, a bad disk or an attacker would: bit flips
(mostly in the header, where they change tags, VRs and lengths), truncation, a length field set to a
chosen value (0, odd, past the end, 0xFFFFFFFF undefined), and a whole element inserted at an element
boundary (any group including private and group 0002 and 0xFFFE, any VR including invalid ones).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

CT = "1.2.840.10008.5.1.4.1.1.2"
UID_ROOT = "1.2.826.0.1.3680043.9.7777."
#: VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2)
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


@dataclass(frozen=True)
class Element:
    """A top-level element of an encoded file: where it starts and where its length field is."""

    start: int
    length_at: int
    length_size: int
    end: int


@dataclass(frozen=True)
class Base:
    """A valid file, its top-level elements (file meta included) and the identifying tokens it carries."""

    name: str
    data: bytes
    elements: tuple[Element, ...]
    tokens: tuple[str, ...]
    pixel_start: int


def _ct(tokens: list[str], implicit: bool) -> Dataset:
    def tok() -> str:
        tokens.append(f"FZ{len(tokens) + 1:04d}X")
        return tokens[-1]

    n = 1 if implicit else 2
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}3.{n}"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{UID_ROOT}3.{n}"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101010"
    ds.AccessionNumber = f"A{tok()}"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.InstitutionName = tok()
    ds.ReferringPhysicianName = f"{tok()}^{tok()}"
    ds.StudyDescription = "CT SPINE"
    block = ds.private_block(0x0009, "FUZZ PACS", create=True)
    block.add_new(0x01, "LO", tok())
    ds.PatientName = f"{tok()}^{tok()}"
    ds.PatientID = f"M{tok()}"
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    other = Dataset()
    other.PatientID = f"M{tok()}"
    other.IssuerOfPatientID = "HOSPITAL"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.SliceThickness = "3"
    ds.StudyInstanceUID = f"{UID_ROOT}1"
    ds.SeriesInstanceUID = f"{UID_ROOT}2"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = n
    ds.ImageComments = f"patient {tok()} moved"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = (np.arange(64, dtype="<u2") * 37 % 4096).astype("<u2").tobytes()
    return ds


def _elements(data: bytes, implicit: bool) -> tuple[tuple[Element, ...], int]:
    """Walk the top-level elements of a file this module wrote (defined lengths only)."""
    found: list[Element] = []
    pos, pixel_start = 132, len(data)
    while pos + 8 <= len(data):
        group, _ = struct.unpack_from("<HH", data, pos)
        explicit = group == 0x0002 or not implicit
        if explicit:
            vr = data[pos + 4 : pos + 6]
            if vr in LONG_VRS:
                length_at, size, header = pos + 8, 4, 12
            else:
                length_at, size, header = pos + 6, 2, 8
        else:
            length_at, size, header = pos + 4, 4, 8
        length = int.from_bytes(data[length_at : length_at + size], "little")
        end = pos + header + length
        found.append(Element(pos, length_at, size, end))
        if (group, _) == (0x7FE0, 0x0010):
            pixel_start = pos
        pos = end
    return tuple(found), pixel_start


def _base(name: str, implicit: bool) -> Base:
    tokens: list[str] = []
    ds = _ct(tokens, implicit)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    elements, pixel_start = _elements(data, implicit)
    return Base(name, data, elements, tuple(tokens), pixel_start)


BASES = {"explicit": _base("explicit", implicit=False), "implicit": _base("implicit", implicit=True)}


# --- mutations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One change to a file: ``flip`` bit ``value`` of byte ``at``; ``truncate`` at ``at``; ``length``:
    the ``size``-byte length field at ``at`` set to ``value``; ``insert`` the bytes ``raw`` at ``at``."""

    kind: str
    at: int
    value: int = 0
    size: int = 0
    raw: bytes = b""


_LENGTHS = st.one_of(
    st.sampled_from([0, 1, 3, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]),
    st.integers(0, 0xFFFFFFFF),
)
#: real VRs, a made-up one, a lower-case one and two NULs
_VR_NAMES = b"AE CS DA DS IS LO LT OB OW PN SH SQ ST UI UL UN US UT ZZ ob \x00\x00"
_VRS = st.one_of(
    st.sampled_from([_VR_NAMES[i : i + 2] for i in range(0, len(_VR_NAMES), 3)]),
    st.binary(min_size=2, max_size=2),
)
_GROUPS = st.one_of(
    st.sampled_from([0x0002, 0x0008, 0x0009, 0x0010, 0x0011, 0x0018, 0x0020, 0x0028, 0x6000, 0x7FE0, 0xFFFE]),
    st.integers(0, 0xFFFF),
)


@st.composite
def _mutation(draw: st.DrawFn, base: Base) -> Mutation:
    kind = draw(st.sampled_from(["flip", "flip", "truncate", "length", "insert"]))
    if kind == "flip":
        # mostly the header: bits flipped in pixel values change nothing the de-identifier reads
        end = draw(st.sampled_from([base.pixel_start + 12, len(base.data)]))
        return Mutation("flip", draw(st.integers(0, end - 1)), draw(st.integers(0, 7)))
    if kind == "truncate":
        return Mutation("truncate", draw(st.integers(0, len(base.data) - 1)))
    element = draw(st.sampled_from(base.elements))
    if kind == "length":
        return Mutation("length", element.length_at, draw(_LENGTHS), element.length_size)
    value = draw(st.one_of(st.binary(max_size=48), st.sampled_from([b"", b"\x00", b"FZ0001X^FZ0002X"])))
    vr = draw(_VRS)
    length = draw(st.one_of(st.just(len(value)), _LENGTHS))
    tag = struct.pack("<HH", draw(_GROUPS), draw(st.integers(0, 0xFFFF)))
    if draw(st.booleans()):  # the implicit-VR form: no VR, a 4-byte length
        header = tag + struct.pack("<L", length)
    elif vr in LONG_VRS:
        header = tag + vr + b"\x00\x00" + struct.pack("<L", length)
    else:
        header = tag + vr + struct.pack("<H", length & 0xFFFF)
    return Mutation("insert", element.start, raw=header + value)


@dataclass(frozen=True)
class Sample:
    """A base file (by name) and the mutations made to it: what hypothesis prints when a property fails,
    and what a regression test needs to rebuild the bytes with :meth:`data`."""

    base: str
    mutations: tuple[Mutation, ...]

    def data(self) -> bytes:
        return mutate(BASES[self.base].data, self.mutations)

    @property
    def tokens(self) -> tuple[str, ...]:
        return BASES[self.base].tokens


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    """A base and one to four mutations of it."""
    name = draw(st.sampled_from(sorted(BASES)))
    return Sample(name, tuple(draw(st.lists(_mutation(BASES[name]), min_size=1, max_size=4))))


def mutate(data: bytes, mutations: tuple[Mutation, ...]) -> bytes:
    """Apply mutations made for ``data``: element edits from the end backwards (so the offsets of the
    others stay right), then bit flips, then the shortest truncation."""
    out = bytearray(data)
    for m in sorted((m for m in mutations if m.kind in ("length", "insert")), key=lambda m: -m.at):
        if m.kind == "length":
            out[m.at : m.at + m.size] = (m.value % (1 << (8 * m.size))).to_bytes(m.size, "little")
        else:
            out[m.at : m.at] = m.raw
    for m in mutations:
        if m.kind == "flip" and m.at < len(out):
            out[m.at] ^= 1 << m.value
    cuts = [m.at for m in mutations if m.kind == "truncate"]
    if cuts:
        del out[min(cuts) :]
    return bytes(out)
