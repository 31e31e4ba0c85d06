"""The hub's door: admit every intact arrival of a declared site, refuse the rest with the reason.

``INBOX/<site>/<night>/`` is what ``push`` renamed into place. ``INBOX/<site>`` is the site's own folder
or the hub's link to it (the site's chrooted SFTP area, docs/deploy.md); receive follows that one link
and no other: a site folder whose target is itself a link, lies in the hub's OUT, holds the inbox or
overlaps another site's folder is refused and left alone, and every read, rename or removal in the inbox
goes through a descriptor of the site's folder opened without following links, so nothing outside it is
ever moved. Each night is first *claimed*: renamed into ``OUT/.receiving/<site>/<night>/``, out of the
inbox, where neither the site (its SFTP login is chrooted to the inbox) nor a later push can change it
while it is checked; what is checked is what is filed. When OUT is on another file system the arrival is
renamed in place to ``INBOX/<site>/.<night>.receiving`` first and then copied over. Then:

1. the site is declared (the registry's keys),
2. the night is a date no later than tomorrow (the hub's date, one day of clock and time-zone slack),
3. ``submission.json`` is readable and names the same site and night as the folders,
4. its ``key_fingerprint`` equals the one the registry pins for the site (when it pins one) and, with the
   hub's secret, the hub's own key's; its seal (``mac``, :mod:`cohortpool.contract.seal`) is the one the
   hub's secret gives it: not edited since it was packaged, made with the consortium secret,
5. every listed file is there with its size and sha256, no unlisted file is there, nothing is a link,
6. it is not a replay: a version of the night admitted before and since replaced by a newer one
   (``OUT/.admitted/<site>/<night>.json`` lists, in order, the ``submission.json`` sha256 of every version
   admitted; submissions carry no packaging time, so the hub's own order of admission is the order).

An intact arrival is renamed into ``OUT/submissions/<site>/<night>/``; one identical to what is already
there (same ``submission.json`` bytes) is dropped as a duplicate; a different one replaces the old folder
whole. A refused one goes to ``OUT/rejected/<site>/<night>/`` with ``reason.json``: each problem with the
check, the file, what is wrong and what to do. A receive that was killed is finished by the next one:
claims are checked again, an unfinished copy is made again, and a replaced folder parked in
``OUT/.superseded/`` is removed once its successor is in place (or put back).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cohortpool.contract.erasure import read_record
from cohortpool.contract.identifiers import is_night
from cohortpool.contract.keys import key_fingerprint
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
#: OUT/.admitted/<site>/<night>.json: the submission.json sha256 of every version admitted, oldest first
ADMITTED = ".admitted"
#: how far past the hub's date a night may be (a site east of the hub, a clock a little ahead)
NIGHT_SLACK = datetime.timedelta(days=1)

_RESEND = (
    "ask {site} to push {night} again (`cohortpool push`); if its own copy is damaged too, re-run deid for "
    "{night} first"
)
_REPACKAGE = "ask {site} to re-run deid for {night} with the consortium key and push it again"
#: what to do about each kind of problem ({site}, {night} filled in): the second half of every reason
ACTIONS: dict[str, str] = {
    "site": (
        "if {site} belongs to the consortium, declare it under `sites:` in the hub's cohortpool.yaml, then "
        "ask {site} to push {night} again; otherwise ask who runs that SFTP account"
    ),
    "layout": "ask {site} to deliver with `cohortpool push` only, which writes <site>/<YYYY-MM-DD>/ folders",
    "link": (
        "the hub's operator removes the link from {site}'s SFTP area (a site folder must be a real folder or "
        "the hub's one link to it, docs/deploy.md) and asks {site} why it was made; nothing was moved"
    ),
    "future_night": (
        "ask {site} to check its clock, time zone and the night's folder name, then rebuild the night under "
        "its real date and push that"
    ),
    "manifest": _REPACKAGE,
    "identity": "ask {site} to push {night} again with `cohortpool push` from its own outbox",
    "key_fingerprint": (
        "ask {site} to compare its key with the consortium's (`cohortpool config` prints the fingerprint), "
        "then re-run deid for {night} with the consortium key and push it again"
    ),
    "mac": _REPACKAGE,
    "replay": (
        "nothing, if nobody meant to send this version again: the newer version admitted before stays; if "
        "{site} means to withdraw it, ask {site} to correct its drop for {night}, re-run deid and push it"
    ),
    "missing": _RESEND,
    "size": _RESEND,
    "sha256": _RESEND,
    "unlisted": _RESEND,
    "not_regular": _RESEND,
    "unreadable": _RESEND,
}


def action(check: str, site: str, night: str) -> str:
    """What to do about a problem of ``check`` with ``site``'s ``night``, in one clause."""
    return ACTIONS.get(check, _RESEND).format(site=site, night=night or "the night")


def with_actions(problems: list[Problem], site: str, night: str) -> list[Problem]:
    """``problems``, each with its :func:`action` filled in."""
    return [p if p.action else dataclasses.replace(p, action=action(p.check, site, night)) for p in problems]


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
        """The first problem, how many more there are, and what to do."""
        if not self.problems:
            return ""
        first = self.problems[0]
        more = len(self.problems) - 1
        reason = str(first) + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        todo = first.action or action(first.check, self.site, self.night)
        return f"{reason}; {todo}"


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
    *,
    secret: bytes | None = None,
    today: datetime.date | None = None,
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
    secret
        The consortium secret the hub holds: every submission must carry its key fingerprint and the seal
        it gives. Only a caller that holds no key leaves it out, and then neither is checked (the CLI
        always passes it).
    today
        The hub's date (in its configured time zone); default: this machine's local date. A later night
        than the day after is refused.

    Raises
    ------
    ValueError
        ``out`` lies inside ``inbox`` or the other way round (its folders would be taken for arrivals),
        ``out`` is not a folder, or ``registry`` declares no site; nothing has been moved then.
    """
    inside = out.resolve().is_relative_to(inbox.resolve()) or inbox.resolve().is_relative_to(out.resolve())
    if inside:
        raise ValueError(f"{out} and {inbox} must not lie inside each other; give the hub's OUT elsewhere")
    _check_out(out)
    if not registry:
        raise ValueError(
            "no site is declared: receive admits only declared sites; declare them under `sites:` in the "
            "hub's cohortpool.yaml (COHORTPOOL_CONFIG names it)"
        )
    _recover(out)
    arrivals = []
    for claim in _claims(inbox, out):
        if isinstance(claim, Arrival):
            arrival = claim
        else:
            arrival = _file(claim, out, registry, on_bytes, workers, secret, today)
        arrivals.append(arrival)
        if on_arrival is not None:
            on_arrival(arrival)
    _recover(out)
    return arrivals


def _check_out(out: Path) -> None:
    """``out`` is a folder, or can become one (its nearest existing ancestor is a folder)."""
    existing = out
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == out else f"lies under {existing}, which is"
        raise ValueError(f"--out {out} {where} not a folder; give the hub's OUT folder")


def pending_bytes(inbox: Path) -> int:
    """Bytes waiting in the inbox (for a progress bar's total); reads only the sizes inside the sites'
    own folders, as :func:`receive` would find them."""
    total = 0
    sites, _refused = _site_folders(inbox, None)
    for folder in sites.values():
        try:
            with os.scandir(folder.fd) as entries:
                nights = [e.name for e in entries if e.is_dir(follow_symlinks=False) and e.name[0] != "."]
            for night in nights:
                for root, _dirs, names in os.walk(f"{folder.path(night)}"):
                    total += sum(os.lstat(f"{root}/{n}").st_size for n in names)
        except OSError:
            continue
        finally:
            os.close(folder.fd)
    return total


@dataclass(frozen=True)
class _SiteFolder:
    """A site's folder in the inbox, opened without following a link at its last step."""

    fd: int
    #: where it really is (links resolved)
    real: Path

    def path(self, name: str) -> str:
        """A path to the entry ``name`` through the descriptor (so a folder swapped for a link since it
        was opened is never followed), where the system offers one."""
        proc = Path(f"/proc/self/fd/{self.fd}")
        return f"{proc}/{name}" if proc.is_dir() else f"{self.real}/{name}"


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _open_site(site_dir: Path) -> _SiteFolder | Problem:
    """Open ``INBOX/<site>``: the folder itself, or the folder the hub's link names (one link, no more:
    a site can make links inside its SFTP area, never the hub's)."""
    path = site_dir
    if site_dir.is_symlink():
        target = site_dir.readlink()
        path = target if target.is_absolute() else site_dir.parent / target
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and path.is_symlink()):
            detail = f"is a link to {path}, which is a link itself; not followed"
            return Problem("link", site_dir.name, detail)
        if exc.errno in (errno.ENOTDIR, errno.ENOENT):
            return Problem("layout", site_dir.name, "not a site folder (a file, or a link to no folder)")
        raise
    proc = Path(f"/proc/self/fd/{fd}")
    real = proc.readlink() if proc.is_symlink() else path.resolve()
    return _SiteFolder(fd, real)


def _site_folders(inbox: Path, out: Path | None) -> tuple[dict[str, _SiteFolder], list[Arrival]]:
    """Every site folder of the inbox that may be read, opened, and an ``ignored`` arrival (left where it
    is) for each that may not: not a folder, a link beyond the hub's one, inside OUT, holding the inbox or
    OUT, or overlapping another site's folder (each would make receive move what is not the site's)."""
    opened: dict[str, _SiteFolder] = {}
    refused: list[Arrival] = []
    for site_dir in _visible(inbox):
        found = _open_site(site_dir)
        if isinstance(found, Problem):
            refused.append(Arrival(site_dir.name, "", "ignored", site_dir, (found,)))
        else:
            opened[site_dir.name] = found
    inbox_real = inbox.resolve()
    fences = [("the hub's OUT", out.resolve())] if out is not None else []
    clashes: dict[str, tuple[str, Path]] = {}
    for site, folder in opened.items():  # the inbox and OUT first: such a folder is nobody's
        if inbox_real.is_relative_to(folder.real):
            clashes[site] = ("the inbox", inbox_real)
        for fence in fences:
            if _overlap(folder.real, fence[1]):
                clashes.setdefault(site, fence)
    candidates = {site: folder.real for site, folder in opened.items() if site not in clashes}
    for site, real in candidates.items():  # then each other: both are refused, either may be the wrong one
        for other, other_real in candidates.items():
            if other != site and _overlap(real, other_real):
                clashes.setdefault(site, (f"{other}'s folder", other_real))
    for site, (what, where) in clashes.items():
        detail = f"its folder {opened[site].real} overlaps {what} ({where}); not read"
        refused.append(Arrival(site, "", "ignored", inbox / site, (Problem("link", site, detail),)))
    for arrival in refused:
        if arrival.site in opened:
            os.close(opened.pop(arrival.site).fd)
    refused = [
        dataclasses.replace(a, problems=tuple(with_actions(list(a.problems), a.site, ""))) for a in refused
    ]
    return opened, sorted(refused, key=lambda a: a.site)


def _overlap(one: Path, other: Path) -> bool:
    return one.is_relative_to(other) or other.is_relative_to(one)


def _claims(inbox: Path, out: Path) -> Iterator[_Claim | Arrival]:
    """Claims left by a killed receive, then every arrival in the inbox, claimed one at a time (a push
    finishing meanwhile is picked up); entries that are not folders, and site folders that may not be
    read, are reported and left alone."""
    claimed = out / CLAIMED
    if claimed.is_dir():
        for folder in sorted(claimed.glob("*/*")):
            if not folder.name.startswith("."):
                yield _Claim(folder.parent.name, folder.name, folder)
    sites, refused = _site_folders(inbox, out)
    try:
        yield from refused
        for site in sorted(sites):
            yield from _site_claims(site, sites[site], inbox / site, claimed)
    finally:
        for opened in sites.values():
            os.close(opened.fd)


def _site_claims(site: str, folder: _SiteFolder, shown: Path, claimed: Path) -> Iterator[_Claim | Arrival]:
    """Claim every night of one site's folder, through its descriptor."""
    with os.scandir(folder.fd) as scan:
        entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in scan)
    for name, is_dir in entries:
        if name.startswith("."):
            if name.endswith(CLAIM_SUFFIX) and is_dir:
                # claimed in place by a receive killed while copying it to OUT's file system
                night = name[1 : -len(CLAIM_SUFFIX)]
                yield _Claim(site, night, _copy_over(folder, name, claimed / site / night))
            continue
        if not is_dir:
            problem = Problem("layout", name, "not a submission folder (a file or a link)")
            yield Arrival(site, name, "ignored", shown / name, tuple(with_actions([problem], site, name)))
            continue
        taken = _claim(folder, name, claimed / site / name)
        if isinstance(taken, Arrival):
            yield dataclasses.replace(taken, site=site, path=shown / name)
        elif taken is not None:
            yield _Claim(site, name, taken)


def _claim(folder: _SiteFolder, name: str, target: Path) -> Path | Arrival | None:
    """Move the arrival ``name`` of a site's folder to ``target`` under OUT; None if it vanished (another
    receive took it); an ``ignored`` arrival if what was moved turned out to be a link (swapped in since
    the folder was listed: the link alone is removed, what it points to is never read)."""
    if target.exists():  # a claim of the same night that could not be filed: left for the next run
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(name, target, src_dir_fd=folder.fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        in_place = f".{name}{CLAIM_SUFFIX}"
        try:
            os.rename(name, in_place, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        except FileNotFoundError:
            return None
        return _copy_over(folder, in_place, target)
    if target.is_symlink() or not target.is_dir():
        target.unlink()
        problem = Problem("link", name, "became a link or a file while being claimed; removed, not followed")
        return Arrival("", name, "ignored", target, (problem,))
    return target


def _copy_over(folder: _SiteFolder, name: str, target: Path) -> Path:
    """Copy the entry ``name`` of a site's folder, claimed in place, to ``target`` (into a hidden name,
    renamed when complete), then remove the original: a kill on the way leaves the original claimed, and
    the copy is made again. Read through a descriptor opened without following links."""
    copying = target.with_name(f".{target.name}.copying")
    _remove(copying)
    copying.parent.mkdir(parents=True, exist_ok=True)
    source = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder.fd)
    try:
        proc = Path(f"/proc/self/fd/{source}")
        shutil.copytree(proc if proc.is_dir() else folder.path(name), copying, symlinks=True)
    finally:
        os.close(source)
    copying.rename(target)
    shutil.rmtree(name, dir_fd=folder.fd)
    return target


def _file(
    claim: _Claim,
    out: Path,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None,
    workers: int,
    secret: bytes | None,
    today: datetime.date | None,
) -> Arrival:
    listing, problems = check_submission(
        claim.folder, claim.site, claim.night, registry, on_bytes, workers, secret=secret, today=today
    )
    if problems or listing is None:
        return _refuse(claim, out, problems)
    replay = _replay(out, claim, listing)
    if replay is not None:
        return _refuse(claim, out, with_actions([replay], claim.site, claim.night))
    return _admit(claim, out, listing)


def check_submission(
    folder: Path,
    site: str,
    night: str,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None = None,
    workers: int = WORKERS,
    *,
    secret: bytes | None = None,
    today: datetime.date | None = None,
    erased: bool = False,
) -> tuple[Listing | None, list[Problem]]:
    """Every check ``receive`` makes of the submission ``folder``, delivered as ``site``/``night``,
    without moving anything: its listing (None when unreadable) and every problem, each with what to do
    (empty: admissible).

    Cheap checks first (registry, night, ``submission.json``, identity, key fingerprint, seal); the files
    are hashed only when those pass. The all-in-one nightly run can call this between its site and hub
    halves. ``secret`` and ``today`` as for :func:`receive`.

    ``erased``: the folder is one the hub already holds (``OUT/submissions``), so the hub's own
    ``erasure.json`` for this version explains the files it rewrote or removed for withdrawn patients
    (:func:`~cohortpool.transport.verify.check_folder`). Never at the door: there an ``erasure.json`` came
    from outside and is an unlisted file like any other.
    """
    listing, problems = _check(folder, site, night, registry, on_bytes, workers, secret, today, erased)
    return listing, with_actions(problems, site, night)


def _check(
    folder: Path,
    site: str,
    night: str,
    registry: Mapping[str, str | None],
    on_bytes: Callable[[int], None] | None,
    workers: int,
    secret: bytes | None,
    today: datetime.date | None,
    erased: bool = False,
) -> tuple[Listing | None, list[Problem]]:
    if site not in registry:
        declared = ", ".join(sorted(registry)) or "none"
        detail = f"site {site!r} is not declared in the configuration (declared: {declared})"
        return None, [Problem("site", None, detail)]
    if not is_night(night):
        return None, [Problem("layout", None, f"folder {night!r} is not a night (YYYY-MM-DD)")]
    latest = (today or datetime.date.today()) + NIGHT_SLACK
    if datetime.date.fromisoformat(night) > latest:
        detail = f"night {night} is in the future (the latest night the hub takes today is {latest})"
        return None, [Problem("future_night", None, detail)]
    try:
        listing = read_listing(folder)
    except ManifestError as exc:
        return None, [Problem("manifest", MANIFEST, str(exc).removeprefix(f"{MANIFEST}: "))]
    if (listing.site_id, listing.night) != (site, night):
        detail = f"names {listing.site_id}/{listing.night}, but arrived as {site}/{night}"
        return listing, [Problem("identity", MANIFEST, detail)]
    key_problem = _key_problem(listing, site, registry[site], secret)
    if key_problem is not None:
        return listing, [key_problem]
    erasure = read_record(folder, listing.sha256) if erased else None
    return listing, check_folder(folder, listing, on_bytes, workers, erasure)


def _key_problem(listing: Listing, site: str, pinned: str | None, secret: bytes | None) -> Problem | None:
    """The key fingerprint against the registry's pin and the hub's own key, then the seal."""
    found = listing.key_fingerprint
    if pinned is not None and found != pinned:
        detail = (
            f"key_fingerprint {found} differs from {pinned}, the one the registry pins for {site}: "
            "it was made with another consortium secret"
            if found
            else f"no key_fingerprint, but the registry pins {pinned} for {site}"
        )
        return Problem("key_fingerprint", MANIFEST, detail)
    if secret is None:
        return None
    hub = key_fingerprint(secret)
    if found != hub:
        detail = (
            f"key_fingerprint {found} differs from {hub}, the hub's key: it was made with another consortium "
            "secret"
            if found
            else f"no key_fingerprint (the hub's key is {hub}): made by a cohortpool that does not record it"
        )
        return Problem("key_fingerprint", MANIFEST, detail)
    if not listing.seal_matches(secret):
        how = "a seal (mac) that does not match" if listing.sealed else "no seal (mac)"
        detail = (
            f"{how}: it was edited after packaging, or made with another consortium secret than the hub's "
            f"(key fingerprint {hub})"
        )
        return Problem("mac", MANIFEST, detail)
    return None


def _history_path(out: Path, site: str, night: str) -> Path:
    return out / ADMITTED / site / f"{night}.json"


def _history(out: Path, site: str, night: str) -> list[str]:
    """The ``submission.json`` sha256 of every version of the night admitted, oldest first (an OUT from
    before the history was kept starts from the version in place)."""
    try:
        versions = json.loads(_history_path(out, site, night).read_text(encoding="utf-8"))["versions"]
        return [str(v) for v in versions]
    except FileNotFoundError:
        current = _manifest_bytes(out / SUBMISSIONS / site / night)
        return [] if current is None else [hashlib.sha256(current).hexdigest()]


def _replay(out: Path, claim: _Claim, listing: Listing) -> Problem | None:
    """A :class:`Problem` when ``listing`` is a version of the night admitted before and since replaced."""
    versions = _history(out, claim.site, claim.night)
    if listing.sha256 not in versions or listing.sha256 == versions[-1]:
        return None
    detail = (
        f"an older version of {claim.site}/{claim.night} (submission.json sha256 {listing.sha256[:12]}...), "
        f"admitted before and replaced by a newer one ({versions[-1][:12]}...): a replay, not taken"
    )
    return Problem("replay", MANIFEST, detail)


def _record(out: Path, claim: _Claim, listing: Listing) -> None:
    """Add the version being admitted to the night's history (before it moves in: a kill between leaves
    it the newest, so the claim is admitted by the next receive)."""
    versions = _history(out, claim.site, claim.night)
    if versions and versions[-1] == listing.sha256:
        return
    path = _history_path(out, claim.site, claim.night)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    document = {"versions": [*versions, listing.sha256]}
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _admit(claim: _Claim, out: Path, listing: Listing) -> Arrival:
    target = out / SUBMISSIONS / claim.site / claim.night
    facts = (listing.sha256, len(listing.files), sum(f.size or 0 for f in listing.files.values()))
    if _manifest_bytes(target) == listing.raw:
        _record(out, claim, listing)
        shutil.rmtree(claim.folder)
        return Arrival(claim.site, claim.night, "duplicate", target, (), *facts)
    status = "admitted"
    _record(out, claim, listing)
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
    problems = with_actions(problems, claim.site, claim.night)
    arrival = Arrival(claim.site, claim.night, "refused", target, tuple(problems))
    reason = {
        "site": claim.site,
        "night": claim.night,
        "reason": arrival.reason,
        "action": problems[0].action if problems else None,
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
