"""The hub's door: admit every intact arrival of a declared site, refuse the rest with the reason.

``INBOX/<site>/<night>/`` is what ``push`` renamed into place. Each is first *claimed* (renamed to
``INBOX/<site>/.<night>.receiving``, in the same folder, so atomically and out of a later push's way:
a push that swaps in a new version meanwhile does not change what is being checked), then checked:

1. the site is declared (the registry's keys),
2. ``submission.json`` is readable and names the same site and night as the folders,
3. its ``key_fingerprint`` equals the one the registry pins for the site (when it pins one),
4. every listed file is there with its size and sha256, no unlisted file is there, nothing is a link.

An intact arrival is moved whole into ``OUT/submissions/<site>/<night>/``; one identical to what is
already there (same ``submission.json`` bytes) is dropped as a duplicate; a different one replaces the
old folder whole. A refused one goes to ``OUT/rejected/<site>/<night>/`` with ``reason.json``. A receive
that was killed is finished by the next one: claimed folders are checked again, a replaced folder parked
in ``OUT/.superseded/`` is removed once its successor is in place (or put back if it never came).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cohortpool.transport.manifest import MANIFEST, NIGHT, Listing, ManifestError, read_listing
from cohortpool.transport.verify import WORKERS, Problem, check_folder

SUBMISSIONS = "submissions"
REJECTED = "rejected"
REASON_FILE = "reason.json"
#: a claimed arrival: ``INBOX/<site>/.<night>.receiving``
CLAIM_SUFFIX = ".receiving"
#: scratch under OUT: cross-file-system copies, and replaced versions until their successor is in place
_COPYING = ".receiving"
_SUPERSEDED = ".superseded"


@dataclass(frozen=True)
class Arrival:
    """What ``receive`` did with one ``INBOX/<site>/<night>/``."""

    site: str
    night: str
    #: ``admitted``, ``replaced`` (a different version was admitted before), ``duplicate`` (the same
    #: bytes were admitted before: the copy is dropped), ``refused``, ``ignored`` (not a folder: left)
    status: str
    #: where it is now (None for a dropped duplicate)
    path: Path | None
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


@dataclass
class _Claim:
    site: str
    night: str
    folder: Path
    problems: list[Problem] = field(default_factory=list)


def receive(
    inbox: Path,
    out: Path,
    registry: Mapping[str, str | None],
    on_arrival: Callable[[Arrival], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int = WORKERS,
) -> list[Arrival]:
    """Check and file every arrival under ``inbox`` (see the module docstring); returns what happened,
    in site and night order.

    Parameters
    ----------
    registry
        Declared site id -> the key fingerprint pinned for it (None: not pinned). Read from the
        configuration by the caller: this function reads no settings.
    on_arrival
        Called once per arrival as soon as it is filed (to print it, or to announce it to the hub flow).
    on_bytes
        Called with each block's size as files are hashed (a progress bar).

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
    for claim in _claims(inbox):
        arrival = _file(claim, out, registry, on_bytes, workers)
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
            if entry.is_dir() and not entry.is_symlink() and _is_arrival_name(entry.name):
                for root, _dirs, names in os.walk(entry):
                    total += sum(os.lstat(f"{root}/{n}").st_size for n in names)
    return total


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _is_arrival_name(name: str) -> bool:
    return not name.startswith(".") or (name.endswith(CLAIM_SUFFIX) and len(name) > len(CLAIM_SUFFIX) + 1)


def _claims(inbox: Path) -> Iterator[_Claim | Arrival]:
    """Claim every arrival (and yield the ones a killed receive claimed already); non-folders are
    reported as ignored and left where they are."""
    for site_dir in _visible(inbox):
        site = site_dir.name
        if not site_dir.is_dir():
            yield Arrival(site, "", "ignored", site_dir, (Problem("layout", site, "not a site folder"),))
            continue
        for entry in sorted(site_dir.iterdir()):
            if not _is_arrival_name(entry.name):
                continue
            if entry.name.startswith("."):  # claimed by a receive that did not finish
                yield _Claim(site, entry.name[1 : -len(CLAIM_SUFFIX)], entry)
                continue
            if entry.is_symlink() or not entry.is_dir():
                problem = Problem("layout", entry.name, "not a submission folder (a file or a link)")
                yield Arrival(site, entry.name, "ignored", entry, (problem,))
                continue
            claimed = site_dir / f".{entry.name}{CLAIM_SUFFIX}"
            if claimed.exists():  # an older claim still there (it could not be filed): next run
                continue
            try:
                entry.rename(claimed)
            except FileNotFoundError:  # taken by another receive
                continue
            yield _Claim(site, entry.name, claimed)


def _file(
    claim: _Claim | Arrival,
    out: Path,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None,
    workers: int,
) -> Arrival:
    if isinstance(claim, Arrival):
        return claim
    listing, problems = _check(claim, registry, on_bytes, workers)
    if problems or listing is None:
        return _refuse(claim, out, problems)
    return _admit(claim, out, listing)


def _check(
    claim: _Claim,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None,
    workers: int,
) -> tuple[Listing | None, list[Problem]]:
    """The listing and every problem; cheap checks first, files hashed only when those pass."""
    site, night = claim.site, claim.night
    if site not in registry:
        declared = ", ".join(sorted(registry)) or "none"
        detail = f"site {site!r} is not declared in the configuration (declared: {declared})"
        return None, [Problem("site", None, detail)]
    if not NIGHT.match(night):
        return None, [Problem("layout", None, f"folder {night!r} is not a night (YYYY-MM-DD)")]
    try:
        listing = read_listing(claim.folder)
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
    return listing, check_folder(claim.folder, listing, on_bytes, workers)


def _admit(claim: _Claim, out: Path, listing: Listing) -> Arrival:
    target = out / SUBMISSIONS / claim.site / claim.night
    size = sum(f.size or 0 for f in listing.files.values())
    if _manifest_bytes(target) == listing.raw:
        shutil.rmtree(claim.folder)
        return Arrival(
            claim.site, claim.night, "duplicate", target, (), listing.sha256, len(listing.files), size
        )
    status = "admitted"
    target.parent.mkdir(parents=True, exist_ok=True)
    parked = out / _SUPERSEDED / claim.site / claim.night
    if target.exists():
        status = "replaced"
        _remove(parked)
        parked.parent.mkdir(parents=True, exist_ok=True)
        target.rename(parked)
    _place(claim.folder, target, out)
    _remove(parked)
    return Arrival(claim.site, claim.night, status, target, (), listing.sha256, len(listing.files), size)


def _refuse(claim: _Claim, out: Path, problems: list[Problem]) -> Arrival:
    target = out / REJECTED / claim.site / claim.night
    _remove(target)  # an earlier refusal of the same night: the newest arrival is the one kept
    target.parent.mkdir(parents=True, exist_ok=True)
    _place(claim.folder, target, out)
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


def _place(folder: Path, target: Path, out: Path) -> None:
    """Move a claimed folder to ``target`` (which does not exist): one rename when the inbox and ``out``
    share a file system; else a copy into hidden scratch under ``out``, renamed into place when complete,
    and only then the claimed original removed (a kill on the way leaves the original claimed)."""
    try:
        folder.rename(target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    copying = out / _COPYING / f"{target.parent.name}-{target.name}"
    _remove(copying)
    copying.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, copying, symlinks=True)
    copying.rename(target)
    shutil.rmtree(folder)


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
    back (the claimed successor is then checked again and replaces it properly)."""
    _remove(out / _COPYING)
    parked_root = out / _SUPERSEDED
    if not parked_root.is_dir():
        return
    for parked in sorted(parked_root.glob("*/*")):
        target = out / SUBMISSIONS / parked.parent.name / parked.name
        if target.exists():
            _remove(parked)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            parked.rename(target)
    _remove(parked_root)
