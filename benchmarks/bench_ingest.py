"""Ingestion throughput: cohortpool's PACS fetch and C-STORE receiver beside dcmtk's tools, in one run.

Peers (the tools a PACS administrator would otherwise script): dcmtk ``getscu`` (C-GET from Orthanc) for
pulling, dcmtk ``storescp`` for receiving. Both sides write every instance to disk. A real Orthanc is
started on loopback with the test's settings; the studies are synthetic (pydicom, 256x256 16-bit).

    .venv/bin/python benchmarks/bench_ingest.py [--studies 3] [--instances 100] [--repeats 3]

Prints medians and ratios (cohortpool time / peer time) as a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pydicom.uid import generate_uid

from cohortpool.ingest import fetch_new_studies
from cohortpool.ingest.listener import start_listener
from ingest_testdata import make_instance


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_studies(folder: Path, studies: int, instances: int) -> tuple[list[str], list[Path]]:
    uids, files = [], []
    for s in range(studies):
        study, series = generate_uid(), generate_uid()
        uids.append(study)
        for i in range(instances):
            ds = make_instance(study_uid=study, series_uid=series, modality="CT", number=i + 1, size=256)
            path = folder / f"s{s}_{i:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return uids, files


def start_orthanc(root: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "StableAge": 1,
        "DicomAlwaysAllowGet": True, "DicomAlwaysAllowFind": True, "SaveJobs": False,
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }  # fmt: skip
    (root / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen(["/usr/sbin/Orthanc", str(root / "orthanc.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return proc, url, dicom_port
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("Orthanc did not start")


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for tool in ("storescu", "storescp", "getscu"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs dcmtk's {tool}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "export").mkdir()
        uids, files = make_studies(tmp / "export", args.studies, args.instances)
        mbytes = sum(f.stat().st_size for f in files) / 1e6
        proc, url, dicom_port = start_orthanc(tmp)
        try:
            subprocess.run(["storescu", "-aec", "ORTHANC", "127.0.0.1", str(dicom_port), *map(str, files)],
                           check=True, capture_output=True)  # fmt: skip
            time.sleep(2.5)  # StableAge 1 s: let Orthanc declare the studies stable
            runs: dict[str, list[float]] = {
                k: [] for k in ("rest", "dicomweb", "getscu", "listen", "storescp")
            }
            for r in range(args.repeats):
                for name, target in (("rest", url), ("dicomweb", f"{url}/dicom-web")):
                    out = tmp / f"{name}{r}"
                    runs[name].append(
                        timed(lambda t=target, o=out: fetch_new_studies(t, o, "site01", o / ".st"))
                    )
                out = tmp / f"getscu{r}"
                out.mkdir()

                def getscu(o: Path = out) -> None:
                    for uid in uids:
                        subprocess.run(["getscu", "-aec", "ORTHANC", "-S", "-k", "QueryRetrieveLevel=STUDY",
                                        "-k", f"StudyInstanceUID={uid}", "-od", str(o), "127.0.0.1",
                                        str(dicom_port)], check=True, capture_output=True)  # fmt: skip

                runs["getscu"].append(timed(getscu))
                # receiving: the same files pushed by storescu into each receiver
                listener = start_listener(tmp / f"listen{r}", "site01", port=0)
                push = ["storescu", "-aec", "COHORTPOOL", "127.0.0.1", str(listener.port), *map(str, files)]
                runs["listen"].append(
                    timed(lambda p=push: subprocess.run(p, check=True, capture_output=True))
                )
                listener.stop()
                port = free_port()
                (tmp / f"scp{r}").mkdir()
                scp = subprocess.Popen(
                    ["storescp", "-aet", "STORESCP", "-od", str(tmp / f"scp{r}"), str(port)]
                )
                time.sleep(0.5)
                push = ["storescu", "-aec", "STORESCP", "127.0.0.1", str(port), *map(str, files)]
                runs["storescp"].append(
                    timed(lambda p=push: subprocess.run(p, check=True, capture_output=True))
                )
                scp.terminate()
                scp.wait(timeout=10)
            counts = {k: len(list((tmp / f"{k}0").rglob("*.dcm"))) for k in ("rest", "dicomweb", "listen")}
            counts["getscu"] = len(list((tmp / "getscu0").iterdir()))
            counts["storescp"] = len(list((tmp / "scp0").iterdir()))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    med = {k: statistics.median(v) for k, v in runs.items()}
    n = len(files)
    print(f"{n} instances, {mbytes:.1f} MB, median of {args.repeats} runs; files written: {counts}")
    print("| what | tool | median s | instances/s | ratio to peer |")
    print("|---|---|---|---|---|")
    rows = [("pull from Orthanc", "cohortpool fetch (REST change log)", "rest", "getscu"),
            ("pull from Orthanc", "cohortpool fetch (DICOMweb QIDO/WADO-RS)", "dicomweb", "getscu"),
            ("pull from Orthanc", "dcmtk getscu (C-GET), peer", "getscu", "getscu"),
            ("receive C-STORE", "cohortpool listen (atomic + fsync)", "listen", "storescp"),
            ("receive C-STORE", "dcmtk storescp, peer", "storescp", "storescp")]  # fmt: skip
    for what, tool, key, peer in rows:
        print(f"| {what} | {tool} | {med[key]:.2f} | {n / med[key]:.0f} | {med[key] / med[peer]:.2f} |")


if __name__ == "__main__":
    main()
