"""``arlab-grade collect``: an LMS download (a zip or a folder) into the course's
``submitted/<student>/<assignment>/`` with the ``timestamp.txt`` nbgrader reads.

Understood by default: Canvas names ``<student>_[LATE_]<user id>_<submission id>_<name>``
(the student part is the student id) and one folder per student (``<student>/<file>``, under
any common top folders). ``--pattern`` overrides: a regular expression searched in each file's
path inside the download, with the named group ``student`` and optionally ``timestamp`` and
``notebook``. Submission times come from the pattern or the file's modification time; times
without a zone are read in ``--timezone`` (default: this computer's zone).
"""
from __future__ import annotations

import re
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path, PurePosixPath
from typing import Callable

import nbformat

from arlab.grading.course import Course, CourseError, nbgrader_timestamp

CANVAS = re.compile(r"(?P<student>[^_/]+)_(?:(?P<late>LATE)_)?(?P<user_id>\d+)_"
                    r"(?P<submission_id>\d+)_(?P<filename>.+)")
_SKIP_PARTS = ("__MACOSX", ".ipynb_checkpoints")
_RESUBMISSION = re.compile(r"-\d+$")  # Canvas appends -1, -2 ... to a resubmitted file


@dataclass
class Found:
    """One file of the download and whose it is."""

    path: str                # inside the download
    student: str
    filename: str            # the name the student gave it (LMS prefix removed)
    moment: datetime         # aware
    late: bool
    read: Callable[[], bytes]


@dataclass
class Collected:
    student: str
    notebooks: dict[str, str] = field(default_factory=dict)  # notebook -> file in download
    moment: datetime | None = None
    late: bool = False
    notes: list[str] = field(default_factory=list)


def parse_timezone(text: str | None) -> tzinfo | None:
    """``None`` (this computer's zone), an IANA name (``Europe/Paris``), ``UTC`` or ``+05:30``."""
    if not text:
        return None
    match = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})", text.strip())
    if match:
        sign = 1 if match[1] == "+" else -1
        return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
    if text.strip().upper() in ("UTC", "Z"):
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseError(f"unknown time zone {text!r}; use an IANA name such as "
                           "Europe/Berlin, UTC, or an offset such as +02:00.") from None


def _aware(moment: datetime, zone: tzinfo | None) -> datetime:
    if moment.tzinfo is not None:
        return moment
    return moment.astimezone() if zone is None else moment.replace(tzinfo=zone)


def parse_moment(text: str, zone: tzinfo | None = None) -> datetime:
    """A submission time from a file name: ISO 8601 (with or without a zone), or compact
    ``20240131T235959Z`` / ``2024-01-31-23-59-59``."""
    text = text.strip()
    compact = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})[T _-]?(\d{2})[-:]?(\d{2})[-:]?(\d{2})"
                           r"(Z)?", text)
    if compact:
        moment = datetime(*map(int, compact.groups()[:6]))
        return moment.replace(tzinfo=timezone.utc) if compact[7] else _aware(moment, zone)
    import dateutil.parser

    try:
        return _aware(dateutil.parser.parse(text), zone)
    except (ValueError, OverflowError):
        raise CourseError(f"cannot read the time {text!r} matched by --pattern; use ISO 8601 "
                           "such as 2024-01-31T23:59:59+01:00.") from None


def _zip_moment(info: zipfile.ZipInfo, zone: tzinfo | None) -> datetime:
    """A zip entry's time: the exact UTC time of the 'extended timestamp' field when the
    zipper wrote one, else the DOS time (local time of the zipper, read in ``zone``)."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        body = extra[4:4 + size]
        if tag == 0x5455 and size >= 5 and body[0] & 1:
            return datetime.fromtimestamp(struct.unpack("<i", body[1:5])[0], timezone.utc)
        extra = extra[4 + size:]
    return _aware(datetime(*info.date_time), zone)


def _listing(download: Path, zone: tzinfo | None) -> list[tuple[str, datetime, Callable]]:
    """(path inside the download, modification time, reader) for every regular file."""
    items = []
    if download.is_dir():
        for path in sorted(download.rglob("*")):
            if path.is_file() and not path.is_symlink():
                moment = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                items.append((path.relative_to(download).as_posix(), moment, path.read_bytes))
    elif zipfile.is_zipfile(download):
        archive = zipfile.ZipFile(download)
        for info in archive.infolist():
            if not info.is_dir():
                items.append((info.filename, _zip_moment(info, zone),
                              lambda name=info.filename: archive.read(name)))
    else:
        raise CourseError(f"{download} is neither a folder nor a zip file; pass the LMS "
                           "download (the zip, or the folder it unpacks to).")
    return [i for i in items if not any(p in _SKIP_PARTS or p.startswith(".")
                                        for p in PurePosixPath(i[0]).parts)]


def _strip_common(paths: list[str]) -> int:
    """How many leading folders every path shares and can lose keeping a student folder."""
    parts = [PurePosixPath(p).parts for p in paths]
    depth = 0
    while parts and all(len(p) > depth + 2 and p[depth] == parts[0][depth] for p in parts):
        depth += 1
    return depth


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip("._") or "unknown"


def find_files(download: Path, pattern: str | None = None,
               zone: tzinfo | None = None) -> tuple[list[Found], list[str]]:
    """Every file of the download with its student; and the paths nobody could be found for."""
    items = _listing(download, zone)
    found, unknown = [], []
    if pattern:
        regex = re.compile(pattern)
        if "student" not in regex.groupindex:
            raise CourseError("--pattern needs a named group student, e.g. "
                               r"'(?P<student>[^/]+)/.*\.ipynb'.")
        for path, moment, read in items:
            match = regex.search(path)
            if not match:
                unknown.append(path)
                continue
            groups = match.groupdict()
            when = parse_moment(groups["timestamp"], zone) if groups.get("timestamp") else moment
            name = groups.get("notebook") or PurePosixPath(path).name
            found.append(Found(path, _safe_id(groups["student"]), name, when, False, read))
        return found, unknown
    folders = [p for p, _, _ in items if not CANVAS.fullmatch(PurePosixPath(p).name)]
    depth = _strip_common(folders)
    for path, moment, read in items:
        match = CANVAS.fullmatch(PurePosixPath(path).name)
        if match:
            found.append(Found(path, _safe_id(match["student"]), match["filename"], moment,
                               bool(match["late"]), read))
            continue
        parts = PurePosixPath(path).parts[depth:]
        if len(parts) >= 2:
            found.append(Found(path, _safe_id(parts[0]), parts[-1], moment, False, read))
        else:
            unknown.append(path)
    return found, unknown


def _notebook_for(filename: str, notebooks: list[str], single: bool) -> str | None:
    """Which of the assignment's notebooks a submitted file is (LMS names get altered)."""
    stem = PurePosixPath(filename).stem
    lower = {n.lower(): n for n in notebooks}
    for candidate in (stem, _RESUBMISSION.sub("", stem)):
        if candidate.lower() in lower:
            return lower[candidate.lower()]
    return notebooks[0] if len(notebooks) == 1 and single else None


def collect(course: Course, assignment: str, download: str | Path, pattern: str | None = None,
            zone: str | None = None) -> tuple[list[Collected], list[str]]:
    """Write every student's files into ``submitted/<student>/<assignment>/`` (replacing an
    earlier collection). Returns what was collected and the problems to report."""
    notebooks = course.notebooks(assignment)
    download = Path(download)
    if not download.exists():
        raise CourseError(f"{download} does not exist; pass the path of the LMS download.")
    files, unknown = find_files(download, pattern, parse_timezone(zone))
    problems = [f"{p}: cannot tell whose file this is (not a Canvas name, not in a student "
                f"folder); collect with --pattern" for p in unknown]
    by_student: dict[str, list[Found]] = {}
    for item in files:
        by_student.setdefault(item.student, []).append(item)
    collected = []
    for student, items in sorted(by_student.items()):
        entry = Collected(student, late=any(i.late for i in items))
        ipynbs = [i for i in items if i.filename.endswith(".ipynb")]
        chosen: dict[str, Found] = {}
        for item in sorted(ipynbs, key=lambda i: i.moment):
            name = _notebook_for(item.filename, notebooks, single=len(ipynbs) == 1)
            if name is None:
                problems.append(f"{student}: {item.path}: cannot tell which of "
                                f"{', '.join(notebooks)} this is; rename it and collect again")
            elif name in chosen:
                entry.notes.append(f"{name}: kept the newer of {chosen[name].path} and "
                                   f"{item.path}")
                chosen[name] = item  # sorted by time: the later one wins
            else:
                chosen[name] = item
        dest = course.submitted(student, assignment)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name, item in chosen.items():
            data = item.read()
            try:
                nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception:  # noqa: BLE001 - kept for a human to look at
                entry.notes.append(f"{name}: {item.path} is not a readable notebook")
            (dest / f"{name}.ipynb").write_bytes(data)
            entry.notebooks[name] = item.path
        for item in items:
            if not item.filename.endswith(".ipynb"):
                target = dest / PurePosixPath(item.filename).name
                target.write_bytes(item.read())
        used = [i for i in items if i in chosen.values()] or items
        entry.moment = max(i.moment for i in used)
        (dest / "timestamp.txt").write_text(nbgrader_timestamp(entry.moment) + "\n")
        if not chosen:
            problems.append(f"{student}: no notebook among {', '.join(i.path for i in items)}")
        collected.append(entry)
    if not collected:
        raise CourseError(f"found no submissions in {download}; check the download, or pass "
                           "--pattern with a named group student.")
    return collected, problems

