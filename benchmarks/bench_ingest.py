"""Ingestion throughput: cohortpool's PACS fetch and C-STORE receiver beside dcmtk's tools, in one run.

Peers (the tools a PACS administrator would otherwise script): dcmtk ``getscu`` (C-GET from Orthanc) for
pulling, dcmtk ``storescp`` for receiving. Both sides write every instance to disk. A real Orthanc is
started on loopback with the test's settings; the studies are synthetic (pydicom, 256x256 16-bit).

    .venv/bin/python benchmarks/bench_ingest.py [--studies 3] [--instances 100] [--repeats 3]

Prints medians and ratios (cohortpool time / peer time) as a Markdown table for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_ingest.py --large-mb 1000 [--repeats 3] [--pythonpath OLD/src]

measures instead what one large instance costs the receiver: dcmtk's ``storescu`` sends a generated
multi-frame instance of about ``--large-mb`` MB on loopback to a real ``cohortpool listen`` process, then
to ``storescp`` (defaults, and ``+B`` bit-preserving, which writes as it reads); the peak RSS of each
receiving process (``VmHWM`` from /proc) and the transfer time are printed, medians of the repeats.
``--pythonpath`` runs the listener from another source tree (e.g. an earlier commit's ``src/``
extracted with ``git archive``) for a before/after figure.
"""

from __future__ import annotations

import argparse
import json
import os
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
from ingest_testdata import make_instance, write_large_instance


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


def _kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


def _receive_large(
    receiver: list[str], ready_line: str | None, port: int | None, large: Path, env: dict[str, str]
) -> tuple[float, float, float]:
    """Start a receiver, push ``large`` with storescu; (RSS at rest MiB, peak RSS MiB, transfer s)."""
    proc = subprocess.Popen(receiver, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        if ready_line is not None:  # cohortpool listen prints its port once listening
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith(ready_line):
                raise SystemExit(f"listener did not start: {line!r}")
            port = int(line.split(" as AE")[0].rsplit(":", 1)[1])
        else:
            time.sleep(1.0)
        rest = _kib(proc.pid, "VmRSS")
        aec = "COHORTPOOL" if ready_line is not None else "STORESCP"
        start = time.perf_counter()
        subprocess.run(["storescu", "-aec", aec, "127.0.0.1", str(port), str(large)], check=True,
                       capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - start
        peak = _kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rest / 1024, peak / 1024, seconds


def large_instance(megabytes: int, repeats: int, pythonpath: str | None) -> None:
    """Peak RSS of cohortpool listen and storescp receiving one instance of ``megabytes`` MB."""
    for tool in ("storescu", "storescp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs dcmtk's {tool}")
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        large = tmp / "large.dcm"
        write_large_instance(large, megabytes)
        size_mb = large.stat().st_size / 1e6
        runs: dict[str, list[tuple[float, float, float]]] = {"listen": [], "storescp": [], "storescp +B": []}
        for r in range(repeats):
            landing = tmp / f"landing{r}"
            listen = [sys.executable, "-m", "cohortpool", "listen", "--port", "0", "--landing", str(landing),
                      "--site", "site01", "--night", "2025-01-01"]  # fmt: skip
            runs["listen"].append(_receive_large(listen, "listening on", None, large, env))
            stored = list(landing.rglob("*.dcm"))
            if len(stored) != 1 or abs(stored[0].stat().st_size - large.stat().st_size) > 256:
                raise SystemExit(f"the listener did not store the instance whole: {stored}")
            shutil.rmtree(landing)
            for name, extra in (("storescp", []), ("storescp +B", ["+B"])):
                out = tmp / f"scp{r}"
                out.mkdir()
                port = free_port()
                scp = ["storescp", *extra, "-aet", "STORESCP", "-od", str(out), str(port)]
                runs[name].append(_receive_large(scp, None, port, large, env))
                shutil.rmtree(out)
    print(f"one instance of {size_mb:.0f} MB (multi-frame secondary capture, explicit VR LE) sent by "
          f"storescu on loopback; median of {repeats}")  # fmt: skip
    print("| receiver | RSS at rest MiB | peak RSS MiB | peak - rest MiB | transfer s | MB/s |")
    print("|---|---|---|---|---|---|")
    for name, values in runs.items():
        rest, peak, secs = (statistics.median(v[i] for v in values) for i in range(3))
        label = "cohortpool listen" if name == "listen" else f"dcmtk {name}"
        print(
            f"| {label} | {rest:.0f} | {peak:.0f} | {peak - rest:.0f} | {secs:.1f} | {size_mb / secs:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-mb", type=int, default=0, help="measure one instance of this size instead")
    parser.add_argument("--pythonpath", help="run the listener from this source tree (before/after)")
    args = parser.parse_args()
    if args.large_mb:
        large_instance(args.large_mb, args.repeats, args.pythonpath)
        return
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
