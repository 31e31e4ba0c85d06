"""The hub's door: admit every intact arrival of a declared site, refuse the rest with the reason.

``INBOX/<site>/<night>/`` is what ``push`` renamed into place. Each is first *claimed*: renamed into
``OUT/.receiving/<site>/<night>/``, out of the inbox, where neither the site (its SFTP login is chrooted
to the inbox) nor a later push can change it while it is checked; what is checked is what is filed.
When OUT is on another file system the arrival is renamed in place to ``INBOX/<site>/.<night>.receiving``
first and then copied over. Then:

1. the site is declared (the registry's keys),
2. ``submission.json`` is readable and names the same site and night as the folders,
3. its ``key_fingerprint`` equals the one the registry pins for the site (when it pins one),
4. every listed file is there with its size and sha256, no unlisted file is there, nothing is a link.

An intact arrival is renamed into ``OUT/submissions/<site>/<night>/``; one identical to what is already
there (same ``submission.json`` bytes) is dropped as a duplicate; a different one replaces the old folder
whole. A refused one goes to ``OUT/rejected/<site>/<night>/`` with ``reason.json``. A receive that was
killed is finished by the next one: claims are checked again, an unfinished copy is made again, and a
replaced folder parked in ``OUT/.superseded/`` is removed once its successor is in place (or put back).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cohortpool.contract.identifiers import is_night
from cohortpool.transport.manifest import MANIFEST, Listing, ManifestError, read_listing
from cohortpool.transport.verify import WORKERS, Problem, check_folder

SUBMISSIONS = "submissions"
REJECTED = "rejected"
REASON_FILE = "reason.json"
#: OUT/.receiving/<site>/<night>: claimed arrivals while they are checked
CLAIMED = ".receiving"
#: INBOX/<site>/.<night>.receiving: claimed in place, before a copy to another file system
CLAIM_SUFFIX = ".receiving"
#: OUT/.superseded/<site>/<night>: an admitted version while its replacement moves in
SUPERSEDED = ".superseded"


@dataclass(frozen=True)
class Arrival:
    """What ``receive`` did with one ``INBOX/<site>/<night>/``."""

    site: str
    night: str
    #: ``admitted``, ``replaced`` (a different version was admitted before), ``duplicate`` (the same
    #: bytes were admitted before: the copy is dropped), ``refused``, ``ignored`` (not a folder: left)
    status: str
    #: where it is now
    path: Path
    problems: tuple[Problem, ...] = ()
    submission_sha256: str | None = None
    files: int = 0
    bytes: int = 0

    @property
    def admitted(self) -> bool:
        """Newly in ``OUT/submissions`` (what the hub should validate and load)."""
        return self.status in ("admitted", "replaced")

    @property
    def reason(self) -> str:
        """The first problem, and how many more there are."""
        if not self.problems:
            return ""
        more = len(self.problems) - 1
        return str(self.problems[0]) + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


@dataclass(frozen=True)
class _Claim:
    site: str
    night: str
    #: under OUT/.receiving
    folder: Path


def receive(
    inbox: Path,
    out: Path,
    registry: Mapping[str, str | None],
    on_arrival: Callable[[Arrival], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int = WORKERS,
) -> list[Arrival]:
    """Check and file every arrival under ``inbox`` (see the module docstring); returns what happened,
    unfinished claims of a killed receive first, then in site and night order.

    Parameters
    ----------
    registry
        Declared site id -> the key fingerprint pinned for it (None: not pinned). Read from the
        configuration by the caller: this function reads no settings.
    on_arrival
        Called once per arrival as soon as it is filed (to print it, or to announce it to the hub flow).
    on_bytes
        Called with each file's size as it is verified (a progress bar).

    Raises
    ------
    ValueError
        ``out`` lies inside ``inbox`` or the other way round (its folders would be taken for arrivals).
    """
    inside = out.resolve().is_relative_to(inbox.resolve()) or inbox.resolve().is_relative_to(out.resolve())
    if inside:
        raise ValueError(f"{out} and {inbox} must not lie inside each other; give the hub's OUT elsewhere")
    _recover(out)
    arrivals = []
    for claim in _claims(inbox, out):
        arrival = claim if isinstance(claim, Arrival) else _file(claim, out, registry, on_bytes, workers)
        arrivals.append(arrival)
        if on_arrival is not None:
            on_arrival(arrival)
    _recover(out)
    return arrivals


def pending_bytes(inbox: Path) -> int:
    """Bytes waiting in the inbox (for a progress bar's total)."""
    total = 0
    for site in _visible(inbox):
        for entry in site.iterdir() if site.is_dir() else ():
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
                for root, _dirs, names in os.walk(entry):
                    total += sum(os.lstat(f"{root}/{n}").st_size for n in names)
    return total


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _claims(inbox: Path, out: Path) -> Iterator[_Claim | Arrival]:
    """Claims left by a killed receive, then every arrival in the inbox, claimed one at a time (a push
    finishing meanwhile is picked up); entries that are not folders are reported and left alone."""
    claimed = out / CLAIMED
    if claimed.is_dir():
        for folder in sorted(claimed.glob("*/*")):
            if not folder.name.startswith("."):
                yield _Claim(folder.parent.name, folder.name, folder)
    for site_dir in _visible(inbox):
        site = site_dir.name
        if not site_dir.is_dir():
            yield Arrival(site, "", "ignored", site_dir, (Problem("layout", site, "not a site folder"),))
            continue
        for entry in sorted(site_dir.iterdir()):
            if entry.name.startswith("."):
                if entry.name.endswith(CLAIM_SUFFIX) and entry.is_dir() and not entry.is_symlink():
                    # claimed in place by a receive killed while copying it to OUT's file system
                    night = entry.name[1 : -len(CLAIM_SUFFIX)]
                    yield _Claim(site, night, _copy_over(entry, claimed / site / night))
                continue
            if entry.is_symlink() or not entry.is_dir():
                problem = Problem("layout", entry.name, "not a submission folder (a file or a link)")
                yield Arrival(site, entry.name, "ignored", entry, (problem,))
                continue
            taken = _claim(entry, claimed / site / entry.name)
            if taken is not None:
                yield _Claim(site, entry.name, taken)


def _claim(entry: Path, target: Path) -> Path | None:
    """Move an arrival to ``target`` under OUT; None if it vanished (another receive took it)."""
    if target.exists():  # a claim of the same night that could not be filed: left for the next run
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        entry.rename(target)
        return target
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    in_place = entry.with_name(f".{entry.name}{CLAIM_SUFFIX}")
    try:
        entry.rename(in_place)
    except FileNotFoundError:
        return None
    return _copy_over(in_place, target)


def _copy_over(folder: Path, target: Path) -> Path:
    """Copy a folder claimed in place to ``target`` (into a hidden name, renamed when complete), then
    remove the original: a kill on the way leaves the original claimed, and the copy is made again."""
    copying = target.with_name(f".{target.name}.copying")
    _remove(copying)
    copying.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, copying, symlinks=True)
    copying.rename(target)
    shutil.rmtree(folder)
    return target


def _file(
    claim: _Claim,
    out: Path,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None,
    workers: int,
) -> Arrival:
    listing, problems = check_submission(claim.folder, claim.site, claim.night, registry, on_bytes, workers)
    if problems or listing is None:
        return _refuse(claim, out, problems)
    return _admit(claim, out, listing)


def check_submission(
    folder: Path,
    site: str,
    night: str,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None = None,
    workers: int = WORKERS,
) -> tuple[Listing | None, list[Problem]]:
    """Every check ``receive`` makes of the submission ``folder``, delivered as ``site``/``night``,
    without moving anything: its listing (None when unreadable) and every problem (empty: admissible).

    Cheap checks first (registry, ``submission.json``, identity, key fingerprint); the files are hashed
    only when those pass. The all-in-one nightly run can call this between its site and hub halves.
    """
    if site not in registry:
        declared = ", ".join(sorted(registry)) or "none"
        detail = f"site {site!r} is not declared in the configuration (declared: {declared})"
        return None, [Problem("site", None, detail)]
    if not is_night(night):
        return None, [Problem("layout", None, f"folder {night!r} is not a night (YYYY-MM-DD)")]
    try:
        listing = read_listing(folder)
    except ManifestError as exc:
        return None, [Problem("manifest", MANIFEST, str(exc).removeprefix(f"{MANIFEST}: "))]
    if (listing.site_id, listing.night) != (site, night):
        detail = f"names {listing.site_id}/{listing.night}, but arrived as {site}/{night}"
        return listing, [Problem("identity", MANIFEST, detail)]
    pinned = registry[site]
    if pinned is not None and listing.key_fingerprint != pinned:
        found = listing.key_fingerprint
        detail = (
            f"key_fingerprint {found} differs from {pinned}, the one the registry pins for {site}: "
            "it was made with another consortium secret"
            if found
            else f"no key_fingerprint, but the registry pins {pinned} for {site}"
        )
        return listing, [Problem("key_fingerprint", MANIFEST, detail)]
    return listing, check_folder(folder, listing, on_bytes, workers)


def _admit(claim: _Claim, out: Path, listing: Listing) -> Arrival:
    target = out / SUBMISSIONS / claim.site / claim.night
    facts = (listing.sha256, len(listing.files), sum(f.size or 0 for f in listing.files.values()))
    if _manifest_bytes(target) == listing.raw:
        shutil.rmtree(claim.folder)
        return Arrival(claim.site, claim.night, "duplicate", target, (), *facts)
    status = "admitted"
    target.parent.mkdir(parents=True, exist_ok=True)
    parked = out / SUPERSEDED / claim.site / claim.night
    if target.exists():
        status = "replaced"
        _remove(parked)
        parked.parent.mkdir(parents=True, exist_ok=True)
        target.rename(parked)
    claim.folder.rename(target)
    _remove(parked)
    return Arrival(claim.site, claim.night, status, target, (), *facts)


def refuse(folder: Path, site: str, night: str, out: Path, problems: list[Problem]) -> Arrival:
    """Move the submission ``folder`` to ``OUT/rejected/<site>/<night>/`` with its ``reason.json``, as
    ``receive`` does with a refused arrival (the hub and the nightly run refuse what fails
    :func:`check_submission` after it was admitted or made). ``folder`` must be on OUT's file system."""
    return _refuse(_Claim(site, night, folder), out, problems)


def _refuse(claim: _Claim, out: Path, problems: list[Problem]) -> Arrival:
    target = out / REJECTED / claim.site / claim.night
    _remove(target)  # an earlier refusal of the same night: the newest arrival is the one kept
    target.parent.mkdir(parents=True, exist_ok=True)
    claim.folder.rename(target)
    arrival = Arrival(claim.site, claim.night, "refused", target, tuple(problems))
    reason = {
        "site": claim.site,
        "night": claim.night,
        "reason": arrival.reason,
        "problems": [p.as_dict() for p in problems],
    }
    partial = target / f".{REASON_FILE}.partial"
    partial.write_text(json.dumps(reason, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(target / REASON_FILE)
    return arrival


def _manifest_bytes(folder: Path) -> bytes | None:
    try:
        return (folder / MANIFEST).read_bytes()
    except OSError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _recover(out: Path) -> None:
    """Finish what a killed receive left: drop unfinished copies (their originals are still claimed in
    the inbox), and for each parked old version, remove it if its successor is in place, else put it
    back (a claimed successor is then checked again and replaces it properly). Empty scratch goes."""
    for copying in sorted((out / CLAIMED).glob("*/.*.copying")):
        _remove(copying)
    parked_root = out / SUPERSEDED
    for parked in sorted(parked_root.glob("*/*")):
        target = out / SUBMISSIONS / parked.parent.name / parked.name
        if target.exists():
            _remove(parked)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            parked.rename(target)
    for scratch in (out / CLAIMED, parked_root):
        for folder in sorted(scratch.glob("*")) if scratch.is_dir() else ():
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        with contextlib.suppress(OSError):
            scratch.rmdir()
