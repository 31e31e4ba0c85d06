"""Text in a compressed frame's codestream header is blanked in place; the pixels decode the same.

The leak: a JPEG comment (COM, FFFE) or an application segment (APP1 Exif/XMP, ...) inside
encapsulated Pixel Data, or a JPEG 2000 comment (FF64), passed de-identification byte for byte,
since the pixel data is copied as read. Real files are made with dcmtk (``dcmcjpeg``, ``dcmcjpls``)
and Pillow (JPEG 2000 codestreams); text segments are inserted after SOI as a modality would write
them. Checked: the text is gone from the output, every other byte of the pixel data is the input's
(fragment lengths, Basic Offset Table, markers and segment lengths), the image decodes to the same
pixels (pydicom, or ``dcmdjpeg``/``dcmdjpls`` where pydicom has no decoder here), APP0 JFIF is kept,
files without such segments still take the fast path, and 1 worker and 2 give identical outputs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from cohortpool.deid import deidentify_tree
from cohortpool.deid.pixel_text import counts, text_segments
from cohortpool.deid.worker import Job, Worker

SECRET = b"0f3c2d9a7b1e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"
NIGHT = "2025-02-03"
SITE = "site01"
COM_TEXT = b"Joan Moore M08582078"
APP1_TEXT = b"Exif\x00\x00" + b"1961:04:12 Moore^Joan"
LS_TEXT = b"Dr Pellegrino 19610412"
J2K_TEXT = b"Joan Moore M08582078 J2K"
FRAME_TEXT = [f"frame {n} Moore^Joan".encode() for n in range(3)]
DCMTK = all(shutil.which(tool) for tool in ("dcmcjpeg", "dcmdjpeg", "dcmcjpls", "dcmdjpls"))


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _with_segments(fragment: bytes, segments: bytes) -> bytes:
    """``segments`` inserted after SOI and an APP0 JFIF segment (where a writer puts them), even length."""
    at = 2
    if fragment[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", fragment[4:6])[0]
    out = fragment[:at] + segments + fragment[at:]
    return out + b"\x00" * (len(out) % 2)


def _ct(sop: str, frames: int = 1, bits: int = 8) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.99.1", "1.2.826.0.1.3680043.99.2"
    ds.PatientID, ds.PatientName, ds.Modality, ds.StudyDate = "M08582078", "Moore^Joan", "CT", "20250101"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 32, 48, 1, "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ramp = np.arange(frames * 32 * 48) % (1 << bits)
    ds.PixelData = ramp.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    return ds


def _compressed(tmp: Path, ds: Dataset, tool: str, *args: str) -> Dataset:
    native, packed = tmp / f"{ds.SOPInstanceUID}.native.dcm", tmp / f"{ds.SOPInstanceUID}.packed.dcm"
    ds.save_as(native, enforce_file_format=True)
    subprocess.run([tool, *args, str(native), str(packed)], check=True, capture_output=True)
    return pydicom.dcmread(packed)


def _reencapsulated(ds: Dataset, frames: list[bytes]) -> Dataset:
    ds.PixelData = encapsulate(frames, has_bot=True)
    return ds


def _pixels(ds: Dataset) -> bytes:
    return bytes(ds.PixelData)


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Input files by name, and their pixel data as the output must hold it (text bytes zeroed)."""
    if not DCMTK:
        pytest.skip("dcmtk (dcmcjpeg, dcmdjpeg, dcmcjpls, dcmdjpls) is not installed")
    tmp = tmp_path_factory.mktemp("pixel_text")
    work, folder = tmp / "work", tmp / "in"
    work.mkdir()
    folder.mkdir()
    made: dict[str, Dataset] = {}
    expected: dict[str, bytes] = {}

    baseline = _compressed(work, _ct("1.2.826.0.1.3680043.99.10"), "dcmcjpeg", "+eb")
    made["clean.dcm"] = baseline
    (frame,) = [f for f in generate_fragments(baseline.PixelData)][1:]
    leaky = _compressed(work, _ct("1.2.826.0.1.3680043.99.11"), "dcmcjpeg", "+eb")
    segments = _segment(0xFE, COM_TEXT) + _segment(0xE1, APP1_TEXT)
    made["com.dcm"] = _reencapsulated(leaky, [_with_segments(frame, segments)])
    blanked = _segment(0xFE, bytes(len(COM_TEXT))) + _segment(0xE1, bytes(len(APP1_TEXT)))
    expected["com.dcm"] = encapsulate([_with_segments(frame, blanked)], has_bot=True)

    multi = _compressed(work, _ct("1.2.826.0.1.3680043.99.12", frames=3), "dcmcjpeg", "+eb")
    frames = list(generate_fragments(multi.PixelData))[1:]
    assert len(frames) == 3
    made["multi.dcm"] = _reencapsulated(
        multi, [_with_segments(f, _segment(0xFE, t)) for f, t in zip(frames, FRAME_TEXT, strict=True)]
    )
    expected["multi.dcm"] = encapsulate(
        [_with_segments(f, _segment(0xFE, bytes(len(t)))) for f, t in zip(frames, FRAME_TEXT, strict=True)],
        has_bot=True,
    )

    jpeg_ls = _compressed(work, _ct("1.2.826.0.1.3680043.99.13", bits=12), "dcmcjpls")
    (frame,) = list(generate_fragments(jpeg_ls.PixelData))[1:]
    made["ls.dcm"] = _reencapsulated(jpeg_ls, [_with_segments(frame, _segment(0xFE, LS_TEXT))])
    expected["ls.dcm"] = encapsulate([_with_segments(frame, _segment(0xFE, bytes(len(LS_TEXT))))], True)

    j2k = _j2k_file()
    if j2k is not None:
        made["j2k.dcm"] = j2k
        expected["j2k.dcm"] = _pixels(j2k).replace(J2K_TEXT, bytes(len(J2K_TEXT)))

    for name, ds in made.items():
        ds.save_as(folder / name, enforce_file_format=True)
    return {"in": folder, "expected": expected, "names": sorted(made), "work": work}


def _j2k_file() -> Dataset | None:
    """A 16-bit CT frame as a JPEG 2000 lossless codestream with a comment (Pillow's OpenJPEG)."""
    from PIL import Image, features

    if not features.check("jpg_2000"):
        return None
    ds = _ct("1.2.826.0.1.3680043.99.14", bits=16)
    image = Image.fromarray(np.frombuffer(ds.PixelData, np.uint16).reshape(32, 48))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG2000", no_jp2=True, irreversible=False, comment=J2K_TEXT.decode())
    codestream = buffer.getvalue()
    assert J2K_TEXT in codestream
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    return _reencapsulated(ds, [codestream + b"\x00" * (len(codestream) % 2)])


@pytest.fixture(scope="module")
def runs(drop: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("pixel_text_runs")
    results = {}
    for workers in (1, 2):
        out, vault = tmp / f"out{workers}", tmp / f"vault{workers}"
        result = deidentify_tree(drop["in"], out, vault, SITE, SECRET, NIGHT, workers=workers)
        results[workers] = (result, out, vault)
    return results


def _by_input(result: Any, out: Path) -> dict[str, Path]:
    return {r.input_path: out / r.output_path for r in result.rows if r.output_path}


def test_text_segments_are_gone_and_every_other_byte_is_kept(drop: dict[str, Any], runs: Any) -> None:
    result, out, _ = runs[1]
    outputs = _by_input(result, out)
    assert sorted(outputs) == drop["names"]
    needles = [COM_TEXT, APP1_TEXT, LS_TEXT, J2K_TEXT, b"Moore", *FRAME_TEXT]
    for name, path in outputs.items():
        data = path.read_bytes()
        assert not [n for n in needles if n in data], name
        if name in drop["expected"]:
            # same fragments, same offset table, same markers and lengths: only the text bytes are zero
            assert _pixels(pydicom.dcmread(path)) == drop["expected"][name], name
    assert b"JFIF\x00" in _pixels(pydicom.dcmread(outputs["com.dcm"]))  # APP0 JFIF kept


def test_the_blanked_images_decode_to_the_same_pixels(drop: dict[str, Any], runs: Any) -> None:
    result, out, _ = runs[1]
    outputs = _by_input(result, out)
    for name in ("com.dcm", "multi.dcm", "j2k.dcm"):
        if name not in outputs:
            continue  # no JPEG 2000 codec in this Pillow build
        before, after = pydicom.dcmread(drop["in"] / name), pydicom.dcmread(outputs[name])
        assert np.array_equal(before.pixel_array, after.pixel_array), name
    for name, tool in (("com.dcm", "dcmdjpeg"), ("multi.dcm", "dcmdjpeg"), ("ls.dcm", "dcmdjpls")):
        decoded = []
        for source in (drop["in"] / name, outputs[name]):
            target = drop["work"] / f"decoded-{len(decoded)}-{name}"
            subprocess.run([tool, str(source), str(target)], check=True, capture_output=True)
            decoded.append(_pixels(pydicom.dcmread(target)))
        assert decoded[0] == decoded[1], name


def test_one_worker_and_two_give_identical_outputs_and_the_summary_counts(runs: Any) -> None:
    (one, out1, vault1), (two, out2, vault2) = runs[1], runs[2]
    files1 = {p.relative_to(out1): p.read_bytes() for p in (out1 / "dicom").rglob("*.dcm")}
    files2 = {p.relative_to(out2): p.read_bytes() for p in (out2 / "dicom").rglob("*.dcm")}
    assert files1 == files2
    assert one.hashes == two.hashes  # the output digests taken while writing match the blanked bytes
    for path, digest in one.hashes.items():
        assert hashlib.sha256((out1 / path).read_bytes()).hexdigest() == digest
    expected = {"JPEG COM": 1 + 3 + 1, "JPEG APP1": 1}
    if "j2k.dcm" in {r.input_path for r in one.rows}:
        expected["J2K COM"] = 1
    assert dict(one.blanked) == dict(two.blanked) == expected
    summary = (vault1 / "ledger" / f"{NIGHT}.summary.csv").read_text()
    assert summary == (vault2 / "ledger" / f"{NIGHT}.summary.csv").read_text()
    rows = {r["what"]: r for r in csv.DictReader(io.StringIO(summary))}
    assert rows["blanked JPEG COM"]["count"] == "5" and rows["blanked JPEG COM"]["tag"] == "(7FE0,0010)"
    assert "Moore" not in summary


def test_only_files_with_text_segments_leave_the_fast_path(drop: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "staging").mkdir()
    worker = Worker(Job(SECRET, SITE, ("clean_descriptors",), False, 365, drop["in"], tmp_path / "staging",
                        tmp_path / "vault", NIGHT))  # fmt: skip
    outcomes = {name: worker.run(name) for name in drop["names"]}
    assert outcomes["clean.dcm"].fast and outcomes["clean.dcm"].blanked == {}
    assert not outcomes["com.dcm"].fast
    assert outcomes["com.dcm"].blanked == {"JPEG APP1": 1, "JPEG COM": 1}
    assert outcomes["multi.dcm"].blanked == {"JPEG COM": 3}


# -- the scanner on hand-built codestreams -----------------------------------------------------------
def _element(fragments: list[bytes], bot: bytes = b"") -> bytes:
    """An encapsulated Pixel Data element (explicit VR little endian) holding ``fragments``."""
    items = struct.pack("<HHL", 0xFFFE, 0xE000, len(bot)) + bot
    for fragment in fragments:
        items += struct.pack("<HHL", 0xFFFE, 0xE000, len(fragment)) + fragment
    return (
        struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OB", 0xFFFFFFFF)
        + items
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )


def _found(element: bytes, syntax: str = "1.2.840.10008.1.2.4.50") -> list[bytes]:
    return [element[o : o + n] for o, n, _ in text_segments(element, syntax, 0, len(element))]


def _jpeg(*segments: bytes) -> bytes:
    sof = _segment(0xC0, bytes(15))
    return (
        b"\xff\xd8" + b"".join(segments) + sof + _segment(0xDA, bytes(8)) + b"\x12\x34\xff\x00" + b"\xff\xd9"
    )


def test_kept_application_segments_are_those_a_decoder_reads() -> None:
    jfif, adobe = _segment(0xE0, b"JFIF\x00\x01\x01" + bytes(9)), _segment(0xEE, b"Adobe\x00\x64" + bytes(5))
    icc, xmp = (
        _segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + bytes(8)),
        _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x>Joan</x>"),
    )
    jfxx, com = _segment(0xE0, b"JFXX\x00\x10thumb"), _segment(0xFE, b"Joan")
    element = _element([_jpeg(jfif, adobe, icc, xmp, jfxx, b"\xff\xff" + com)])  # a fill byte before COM
    assert _found(element) == [xmp[4:], jfxx[4:], b"Joan"]


def test_nothing_after_the_first_scan_and_nothing_in_native_or_rle_pixel_data_is_read() -> None:
    after_sos = _jpeg()[:-2] + _segment(0xFE, b"between scans") + b"\xff\xd9"
    assert _found(_element([after_sos])) == []
    native = struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OB", 4) + _segment(0xFE, b"")
    assert text_segments(native, ExplicitVRLittleEndian, 0, len(native)) == []
    rle = _element([_jpeg(_segment(0xFE, b"Joan"))])
    assert text_segments(rle, RLELossless, 0, len(rle)) == []


@pytest.mark.parametrize(
    "fragment",
    [
        b"\xff\xd8\xff\xe0" + bytes(range(16)) * 8 + b"\xff\xd9",  # APP0 length 1 (the planted corpus)
        b"\xff\xd8\xff\xfe\xff\xff",  # a comment longer than the fragment
        b"\xff\xd8" + b"\xff" * 5000,  # fill bytes and nothing else
        b"\xff\xd8",
        b"\x00\x01\x02\x03",  # not a codestream
    ],
    ids=["bad-length", "past-the-end", "fill-only", "soi-only", "not-jpeg"],
)
def test_a_malformed_header_stops_the_walk_without_an_error(fragment: bytes) -> None:
    assert _found(_element([fragment])) == []


def test_a_segment_over_two_fragments_is_blanked_in_both_and_counted_once() -> None:
    frame = _jpeg(_segment(0xFE, b"Joan Moore M08582078"))
    element = _element([frame[:10], frame[10:]], bot=struct.pack("<L", 0))
    found = text_segments(element, "1.2.840.10008.1.2.4.70", 0, len(element))
    assert b"".join(element[o : o + n] for o, n, _ in found) == b"Joan Moore M08582078"
    assert len(found) == 2 and counts(found) == {"JPEG COM": 1}


def test_j2k_comments_in_the_main_and_tile_part_headers() -> None:
    siz = _segment(0x51, bytes(38) + b"\x07\x01\x01")
    cod = _segment(0x52, b"\x00\x00\x00\x01\x00\x05\x04\x04\x00\x01")
    main_com, tile_com = _segment(0x64, b"\x00\x01Joan Moore"), _segment(0x64, b"\x00\x01M08582078")
    body = b"\x80\x00\x12\x34"
    tile_part = tile_com + b"\xff\x93" + body
    sot = b"\xff\x90" + struct.pack(">HHLBB", 10, 0, 12 + len(tile_part), 0, 1)
    codestream = b"\xff\x4f" + siz + cod + main_com + sot + tile_part + b"\xff\xd9"
    element = _element([codestream])
    assert _found(element, JPEG2000Lossless) == [b"Joan Moore", b"M08582078"]  # Rcom kept
    found = text_segments(element, JPEG2000Lossless, 0, len(element))
    assert counts(found) == {"J2K COM": 2}
