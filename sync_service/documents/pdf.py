"""A workbook as PDF, rendered by LibreOffice headless: what a person prints or reads on a phone.

LibreOffice (`soffice`) converts the xlsx with each sheet's own print setup (landscape, one page
wide, the footer). Each conversion runs with a throw-away profile of its own (so conversions never
share or lock one), in its own process group, with a time limit: a hung office and its helper
processes are killed together. A server without LibreOffice makes no PDF; the refusal says what to
install, and the caller keeps the workbook and shows the note.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sync_service.platform.errors import NotConfigured, ServiceError

SOFFICE = "soffice"  # the program's name on PATH, unless the SOFFICE setting names another
TIMEOUT = 120.0  # seconds
INSTALL = (
    "install LibreOffice Calc on the server (Debian and Ubuntu: apt-get install --no-install-recommends "
    "libreoffice-calc-nogui) or set PLANSHEET_SOFFICE to its program"
)


def program(setting: str | None = None) -> str | None:
    """The LibreOffice program to run: the SOFFICE setting (a name on PATH or a path) or `soffice`; None if absent."""
    return shutil.which(setting or SOFFICE)


def unavailable(setting: str | None = None) -> str | None:
    """Why no PDF can be made here, with what to install; None when LibreOffice is installed."""
    if program(setting) is not None:
        return None
    return f"no PDF was made: LibreOffice ({setting or SOFFICE}) is not installed on the server; {INSTALL}"


def to_pdf(source: Path, *, setting: str | None = None, timeout: float = TIMEOUT) -> bytes:
    """The PDF of the workbook at `source`, as LibreOffice prints it.

    NotConfigured when LibreOffice is not installed; ServiceError when it fails or runs out of time,
    each saying why no PDF was made and what to do.
    """
    found = program(setting)
    if found is None:
        raise NotConfigured(unavailable(setting) or "LibreOffice is not installed on the server")
    with tempfile.TemporaryDirectory(prefix="plansheet-pdf-") as folder:
        profile, out = Path(folder) / "profile", Path(folder) / "out"
        command = office_command(found, profile, "pdf:calc_pdf_Export", out, [Path(source).resolve()])
        code, stderr = _run(command, timeout, Path(folder))
        target = out / (Path(source).stem + ".pdf")
        data = target.read_bytes() if target.is_file() else b""
    if not data.startswith(b"%PDF-"):
        said = " ".join(stderr.split())[:300]
        raise ServiceError(
            f"no PDF was made: LibreOffice could not convert the workbook (exit {code}{': ' + said if said else ''}); "
            "the workbook itself is complete"
        )
    return data


def office_command(program: str, profile: Path, convert_to: str, out: Path, files: list[Path]) -> list[str]:
    """LibreOffice converting `files` to `convert_to` into `out`, headless, in its own throw-away `profile`."""
    return [
        program,
        f"-env:UserInstallation={Path(profile).as_uri()}",
        "--headless",
        "--invisible",
        "--norestore",
        "--nolockcheck",
        "--nodefault",
        "--nologo",
        "--convert-to",
        convert_to,
        "--outdir",
        str(out),
        *map(str, files),
    ]


class OfficeTimeout(RuntimeError):
    """LibreOffice did not finish in time; it was stopped with its helper processes. `said`: its output."""

    def __init__(self, timeout: float, said: str) -> None:
        super().__init__(f"LibreOffice did not finish within {timeout:g} s")
        self.said = said


def run_office(
    command: list[str], timeout: float, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """Run LibreOffice in its own process group: (exit code, stdout, stderr); killed, group and all, on time."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # the group may have ended at that very moment
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise OfficeTimeout(timeout, f"stdout: {stdout.strip()}\nstderr: {stderr.strip()}") from None
    return proc.returncode, stdout or "", stderr or ""


def _run(command: list[str], timeout: float, cwd: Path) -> tuple[int, str]:
    """(exit code, what LibreOffice said on stderr); a timeout is a refusal saying the workbook is complete."""
    try:
        code, _, stderr = run_office(command, timeout, cwd)
    except OfficeTimeout:
        raise ServiceError(
            f"no PDF was made: LibreOffice did not finish within {timeout:g} s and was stopped; "
            "the workbook itself is complete"
        ) from None
    return code, stderr
