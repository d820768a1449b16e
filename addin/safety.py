"""The gatekeeper: inspect an uploaded .xlsx before the fast reader (python-calamine) parses it.

Hostile or broken input ends in a clear `UnreadableWorkbook`, in bounded memory and time: the
wrong kind of file, damaged zips, zip bombs (headers that lie about sizes included), macros, XML
with a DTD, a missing Plan sheet, and cells so far out that calamine's dense grid would take
gigabytes. Every part is inflated once, a chunk at a time; only the structural parts are parsed.
"""

from __future__ import annotations

import codecs
import copy
import itertools
import os
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from addin.issues import Rule, UnreadableWorkbook
from addin.sheet_scan import (
    CHUNK,
    MAX_CARRY_BYTES,
    MIB,
    NotCanonical,
    SheetScan,
    TooLong,
    dimension_extent,
)
from sheet_templates.cells import MAX_COLUMNS as EXCEL_MAX_COLUMNS
from sheet_templates.cells import MAX_ROWS as EXCEL_MAX_ROWS
from sheet_templates.cells import column_letter

MAX_STRUCTURE_BYTES = 16 * MIB  # [Content_Types].xml, workbook.xml and its rels are parsed whole
MAX_PROLOG_BYTES = 64 * 1024  # an XML declaration and comments longer than this are not Excel's
MAX_SLOW_SCAN_BYTES = 16 * MIB  # a Plan sheet not written the way Excel writes it is walked tag by tag up to this
WORKBOOK, WORKBOOK_RELS, CONTENT_TYPES = "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls, and password-encrypted .xlsx
MACRO_EXTENSIONS = {
    ".xlsm": "a macro-enabled workbook (.xlsm)",
    ".xltm": "a macro-enabled template (.xltm)",
    ".xlam": "an Excel add-in (.xlam)",
    ".xlsb": "an Excel binary workbook (.xlsb)",
}
MACRO_CONTENT_TYPES = ("macroenabled", "vbaproject", "macrosheet")
SAVE_AS_XLSX = "open it in Excel and save it as .xlsx (Excel Workbook)"
NO_MACROS = f"Plansheet reads only .xlsx workbooks without macros: {SAVE_AS_XLSX}"


@dataclass(frozen=True, slots=True)
class Limits:
    """What Plansheet agrees to open; the defaults fit a plan with room to spare."""

    max_file_bytes: int = 50 * MIB
    max_entries: int = 1_000
    max_uncompressed_bytes: int = 400 * MIB  # total of all parts
    max_ratio: int = 200  # uncompressed/compressed per part above 1 MiB
    max_rows: int = 100_001  # rows of the plan sheet Plansheet will read (its own limit)
    max_columns: int = 200


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Package:
    """What the inspection learnt about a workbook that is safe to hand to the reader."""

    path: str
    sheet_names: tuple[str, ...]  # in workbook order
    defined_names: dict[str, str]  # workbook-level defined name -> raw text ('"EMEA"', '2027', 'Lists!$A$2:$A$5')
    date1904: bool
    sheet_parts: dict[str, str]  # sheet name -> zip part name ("xl/worksheets/sheet2.xml")
    plan_rows: int  # highest row number holding a cell (even an empty, formatted one) in the plan sheet; 0 if none
    plan_columns: int  # highest column number holding a cell in the plan sheet
    plan_error_cells: tuple[tuple[int, int, str], ...] = ()  # (row, column, "#N/A"): cells showing an Excel error


Refuse = Callable[[Rule, str], UnreadableWorkbook]


FIRST_SHEET = ""  # as `plan_sheet`: scan whichever sheet comes first (an export from another system)


def inspect_package(
    path: str | os.PathLike[str],
    *,
    plan_sheet: str = "Plan",
    limits: Limits = DEFAULT_LIMITS,
    display_name: str | None = None,
) -> Package:
    """Raise UnreadableWorkbook(rule, message, file=display_name or basename) for anything Plansheet must not open."""
    path = os.fspath(path)
    name = display_name or os.path.basename(path)

    def refuse(rule: Rule, message: str) -> UnreadableWorkbook:
        return UnreadableWorkbook(rule, f"{name} {message}", file=name)

    try:
        with open(path, "rb") as fh:
            _check_container(fh, path, display_name, limits, refuse)
            with _damaged(refuse), zipfile.ZipFile(fh) as zf:
                return _Inspection(zf, path, plan_sheet, limits, refuse).run()
    except FileNotFoundError:
        raise refuse(Rule.NOT_XLSX, "was not found; upload the file again.") from None
    except IsADirectoryError:
        raise refuse(Rule.NOT_XLSX, "is a folder, not an Excel workbook.") from None
    except OSError as exc:
        raise refuse(Rule.NOT_XLSX, f"could not be read ({exc.strerror or exc}); upload the file again.") from None


@contextmanager
def _damaged(refuse: Refuse) -> Iterator[None]:
    """Turn what zipfile and zlib raise on damaged bytes (bad CRC, truncated data) into one CORRUPT refusal."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, struct.error) as exc:
        raise refuse(Rule.CORRUPT, _damaged_message(f"details: {exc}")) from None


def _damaged_message(details: str) -> str:
    return (
        "is damaged or incomplete (perhaps the upload or download was cut off): upload it again, and if that does "
        f"not help, {SAVE_AS_XLSX} and upload the saved file ({details})."
    )


def _bomb(reason: str) -> str:
    return (
        f"was refused as a possible 'zip bomb' (a file built to exhaust the server): {reason}. "
        f"A plan workbook never needs that; {SAVE_AS_XLSX} again, or start from the Plansheet template."
    )


def _megabytes(size: int) -> str:
    return f"{size / MIB:,.1f} MB" if size < 1024 * MIB else f"{size / (1024 * MIB):,.1f} GB"


# --- the container: size, kind of file, extension, zip directory ---------------------------------------------


def _check_container(fh: IO[bytes], path: str, display_name: str | None, limits: Limits, refuse: Refuse) -> None:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise refuse(Rule.NOT_XLSX, "is empty (0 bytes); save the workbook in Excel again and upload the saved file.")
    if size > limits.max_file_bytes:
        raise refuse(
            Rule.TOO_LARGE,
            f"is {_megabytes(size)}; Plansheet accepts workbooks up to {_megabytes(limits.max_file_bytes)}. "
            "Remove unused sheets, pictures and rows, save it and upload it again.",
        )
    head = fh.read(512)
    if head.startswith(OLE2_MAGIC):
        if _contains(fh, "EncryptedPackage".encode("utf-16-le")):
            raise refuse(
                Rule.NOT_XLSX,
                "is password-protected; open it in Excel, remove the password (File > Info > Protect Workbook > "
                "Encrypt with Password) and save it as .xlsx (Excel Workbook) without a password.",
            )
        raise refuse(Rule.LEGACY_XLS, f"is an old .xls workbook; {SAVE_AS_XLSX}.")
    if not head.startswith(b"PK"):
        raise refuse(Rule.NOT_XLSX, _not_a_zip(head))
    for candidate in (display_name, path):
        kind = MACRO_EXTENSIONS.get(os.path.splitext(candidate or "")[1].lower())
        if kind:
            raise refuse(Rule.MACROS, f"is {kind}; {NO_MACROS}.")
    entries, directory_bytes = _directory_size(fh, size, refuse)
    if entries > limits.max_entries or directory_bytes > limits.max_entries * 1024:
        count = f"{entries:,}" if entries > limits.max_entries else f"up to {directory_bytes // 46:,}"  # 46 B each
        raise refuse(Rule.ZIP_BOMB, _bomb(f"it holds {count} parts (Plansheet allows {limits.max_entries:,})"))


def _not_a_zip(head: bytes) -> str:
    lower = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    upload = "upload the plan workbook made from the Plansheet template (.xlsx)"
    if lower.startswith(b"%pdf"):
        return f"is a PDF, not an Excel workbook; {upload}."
    if lower.startswith((b"<!doctype html", b"<html", b"<table")):
        return f"is a web page (HTML), not an Excel workbook; {upload}."
    if lower.startswith(b"<?xml"):
        return f"is an XML file (perhaps an 'XML Spreadsheet 2003'), not an Excel workbook; {SAVE_AS_XLSX}."
    if _is_text(head):
        return f"is a text or CSV file, not an Excel workbook; {SAVE_AS_XLSX}, or copy your lines into the template."
    return f"is not an Excel workbook (.xlsx); {upload}."


def _is_text(head: bytes) -> bool:
    """Text in any 8-bit encoding (no control bytes), or UTF-16 with its byte order mark."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
        return all(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return all(byte >= 0x20 or byte in b"\t\r\n" for byte in head)


def _contains(fh: IO[bytes], needle: bytes) -> bool:
    """Whether the open file holds `needle`, read a chunk at a time."""
    fh.seek(0)
    tail = b""
    while block := fh.read(CHUNK):
        if needle in tail + block[: len(needle)] or needle in block:
            return True
        tail = block[-len(needle) :]
    return False


def _directory_size(fh: IO[bytes], size: int, refuse: Refuse) -> tuple[int, int]:
    """(entries, bytes) of the zip's central directory, from its end record, before zipfile parses the directory."""
    fh.seek(max(0, size - 22 - 0xFFFF))
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise refuse(Rule.CORRUPT, _damaged_message("its end is missing"))
    entries, directory_bytes = struct.unpack_from("<HI", tail, at + 10)
    zip64 = at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07"
    if zip64 and (entries == 0xFFFF or directory_bytes == 0xFFFFFFFF):
        fh.seek(struct.unpack_from("<Q", tail, at - 12)[0])
        record = fh.read(56)
        if len(record) == 56 and record.startswith(b"PK\x06\x06"):
            entries, directory_bytes = struct.unpack_from("<QQ", record, 32)
    return entries, directory_bytes


# --- the package: entries, macros, structure, then every part inflated once ----------------------------------


class _Inspection:
    """One pass over a zip already known to be small enough: entries, structure, then every part inflated once."""

    def __init__(self, zf: zipfile.ZipFile, path: str, plan_sheet: str, limits: Limits, refuse: Refuse) -> None:
        self.zf, self.path, self.plan_sheet, self.limits, self.refuse = zf, path, plan_sheet, limits, refuse
        self.infos = {info.filename: info for info in zf.infolist()}
        self.done: set[str] = set()

    def run(self) -> Package:
        self._check_entries()
        self._check_macros()
        if WORKBOOK not in self.infos:
            raise self.refuse(Rule.NOT_XLSX, self._what_zip_is())
        for part in (CONTENT_TYPES, WORKBOOK_RELS):
            if part not in self.infos:
                raise self.refuse(Rule.CORRUPT, _damaged_message(f"{part} is missing"))
        sheets, defined_names, date1904 = self._workbook()
        targets = self._relationships()
        sheet_parts = {sheet: targets[rid] for sheet, rid in sheets if rid in targets}
        names = tuple(sheet for sheet, _ in sheets)
        if self.plan_sheet == FIRST_SHEET and names:
            self.plan_sheet = names[0]
        if self.plan_sheet not in names:
            raise self.refuse(Rule.MISSING_SHEET, self._missing_sheet(names))
        plan_part = sheet_parts.get(self.plan_sheet, "")
        if plan_part not in self.infos:
            raise self.refuse(Rule.CORRUPT, _damaged_message(f"the {self.plan_sheet} sheet's data is missing"))
        scan = None
        for part in self.infos:
            if part == plan_part:
                scan = self._scan_plan(part)
            elif part not in self.done:
                self._stream(part)
        assert scan is not None  # the plan part is one of the parts
        errors = tuple(scan.errors.found)
        return Package(self.path, names, defined_names, date1904, sheet_parts, scan.rows, scan.columns, errors)

    def _scan_plan(self, part: str) -> SheetScan:
        """Inflate the plan sheet, scanning where its cells are: fast for XML as Excel writes it, else tag by tag."""
        scan = SheetScan(fast=True)
        try:
            self._stream(part, self._plan_sink(scan))
        except NotCanonical:
            size = self.infos[part].file_size
            if size > MAX_SLOW_SCAN_BYTES:  # the walk runs at 3-15 MB/s
                raise self.refuse(
                    Rule.BEYOND_LIMITS,
                    f"has a {self.plan_sheet} sheet of {_megabytes(size)} that is not written the way Excel writes "
                    f"it, more than Plansheet checks ({_megabytes(MAX_SLOW_SCAN_BYTES)}); {SAVE_AS_XLSX} again.",
                ) from None
            scan = SheetScan(fast=False)
            self._stream(part, self._plan_sink(scan))
        return scan

    def _check_entries(self) -> None:
        infos, limits = list(self.infos.values()), self.limits
        if len(infos) != len(self.zf.infolist()):
            raise self.refuse(Rule.CORRUPT, _damaged_message("it holds the same part twice"))
        if len(infos) > limits.max_entries:
            raise self.refuse(
                Rule.ZIP_BOMB, _bomb(f"it holds {len(infos):,} parts (Plansheet allows {limits.max_entries:,})")
            )
        for info in infos:
            if info.flag_bits & 0x41:  # encrypted, the zip way (Excel encrypts differently)
                raise self.refuse(Rule.NOT_XLSX, f"is encrypted; {SAVE_AS_XLSX} without a password.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.refuse(Rule.CORRUPT, f"was not saved by Excel (it uses a rare compression); {SAVE_AS_XLSX}.")
        total = sum(info.file_size for info in infos)
        if total > limits.max_uncompressed_bytes:
            allowed = _megabytes(limits.max_uncompressed_bytes)
            raise self.refuse(
                Rule.ZIP_BOMB, _bomb(f"it would expand to {_megabytes(total)} (Plansheet allows {allowed})")
            )
        for info in infos:
            if info.file_size > MIB and info.file_size > limits.max_ratio * info.compress_size:
                ratio = f"more than {limits.max_ratio} to 1"
                raise self.refuse(Rule.ZIP_BOMB, _bomb(f"its part {info.filename} is compressed {ratio}"))
        ordered = sorted(infos, key=lambda info: info.header_offset)
        for info, following in itertools.pairwise(ordered):
            if info.header_offset + 30 + len(info.filename) + info.compress_size > following.header_offset:
                raise self.refuse(Rule.ZIP_BOMB, _bomb("its parts overlap each other"))

    def _check_macros(self) -> None:
        message = f"contains macros (VBA); {NO_MACROS}, which removes them."
        for part in self.infos:
            lower = part.lower()
            if lower.endswith("vbaproject.bin") or lower.startswith("xl/macrosheets/"):
                raise self.refuse(Rule.MACROS, message)
        if CONTENT_TYPES in self.infos:
            for element in self._xml(CONTENT_TYPES):
                if any(marker in element.get("ContentType", "").lower() for marker in MACRO_CONTENT_TYPES):
                    raise self.refuse(Rule.MACROS, message)

    def _what_zip_is(self) -> str:
        if "word/document.xml" in self.infos:
            kind = "a Word document"
        elif "ppt/presentation.xml" in self.infos:
            kind = "a PowerPoint presentation"
        elif "content.xml" in self.infos:
            return "is an OpenDocument spreadsheet (.ods); open it in Excel or LibreOffice and save it as .xlsx."
        elif "xl/workbook.bin" in self.infos:
            return f"is an Excel binary workbook (.xlsb); {SAVE_AS_XLSX}."
        else:
            return (
                "is a zip archive, not an Excel workbook; upload the .xlsx file itself "
                "(unzip the archive first if the workbook is inside it)."
            )
        return f"is {kind}, not an Excel workbook; upload the plan workbook made from the Plansheet template (.xlsx)."

    def _missing_sheet(self, found: tuple[str, ...]) -> str:
        sheet = self.plan_sheet
        listed = ", ".join(f'"{name}"' for name in found) or "none"
        hint = next(
            (f' Rename the sheet "{name}" to "{sheet}".' for name in found if name.lower() == sheet.lower()), ""
        )
        return (
            f'has no sheet named "{sheet}" (its sheets are: {listed}); '
            f'enter your plan in the "{sheet}" sheet of the Plansheet template.{hint}'
        )

    def _workbook(self) -> tuple[list[tuple[str, str]], dict[str, str], bool]:
        """Sheets as (name, relationship id), workbook-level defined names, and the 1904 date system flag."""
        sheets: list[tuple[str, str]] = []
        names: dict[str, str] = {}
        date1904 = False
        for child in self._xml(WORKBOOK):
            tag = _local(child.tag)
            if tag == "workbookPr":
                date1904 = child.get("date1904", "").lower() in ("1", "true")
            for element in child if tag in ("sheets", "definedNames") else ():
                if _local(element.tag) == "sheet":
                    rid = next((v for k, v in element.attrib.items() if k.startswith("{") and _local(k) == "id"), "")
                    sheets.append((element.get("name", ""), rid))
                elif _local(element.tag) == "definedName":
                    name = element.get("name", "")
                    if element.get("localSheetId") is None and not name.startswith("_xlnm."):
                        names[name] = element.text or ""
        return sheets, names, date1904

    def _relationships(self) -> dict[str, str]:
        """Relationship id -> zip part name of the workbook's internal targets (relative to xl/ or absolute)."""
        targets = {}
        for element in self._xml(WORKBOOK_RELS):
            target = element.get("Target", "")
            if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External" or not target:
                continue
            joined = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            targets[element.get("Id", "")] = posixpath.normpath(joined)
        return targets

    def _xml(self, part: str) -> Element:
        """Inflate and parse a structural part with defusedxml (which refuses DTDs and entities too)."""
        if self.infos[part].file_size > MAX_STRUCTURE_BYTES:
            size = _megabytes(self.infos[part].file_size)
            raise self.refuse(Rule.TOO_LARGE, f"has an unusually large {part} ({size}); {SAVE_AS_XLSX} again.")
        chunks: list[bytes] = []
        self._stream(part, chunks.append)
        try:
            return fromstring(b"".join(chunks), forbid_dtd=True)
        except DefusedXmlException:
            raise self._unsafe(part) from None
        except ParseError as exc:
            raise self.refuse(Rule.CORRUPT, _damaged_message(f"{part} is not valid XML: {exc}")) from None

    def _stream(self, part: str, sink: Callable[[bytes], object] | None = None) -> None:
        """Inflate one part a chunk at a time: its real size must be what its header says, its prolog hold no DTD."""
        self.done.add(part)
        info = self.infos[part]
        probe = copy.copy(info)
        probe.file_size = info.file_size + CHUNK + 1  # so zipfile reads on past a lying header instead of stopping
        total, head, prolog_checked = 0, b"", False
        with _damaged(self.refuse), self.zf.open(probe) as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                if total > info.file_size:
                    raise self.refuse(Rule.ZIP_BOMB, _bomb(f"its part {part} is bigger than its header says"))
                if not prolog_checked:
                    head += chunk[: MAX_PROLOG_BYTES - len(head)]
                    verdict = _dtd_in_prolog(head)
                    if verdict or (verdict is None and len(head) >= MAX_PROLOG_BYTES):
                        raise self._unsafe(part)
                    prolog_checked = verdict is False
                if sink is not None:
                    sink(chunk)
        if total != info.file_size:
            raise self.refuse(Rule.CORRUPT, _damaged_message(f"{part} is shorter than its header says"))
        if sink is not None:
            sink(b"")  # the end

    def _plan_sink(self, scan: SheetScan) -> Callable[[bytes], None]:
        """Feed the plan sheet to `scan` (as UTF-8 when it is UTF-16 or UTF-32) and stop as soon as it is too big."""
        decoder: codecs.IncrementalDecoder | None = None
        started = False

        def sink(chunk: bytes) -> None:
            nonlocal decoder, started
            if not started:
                started = True
                encoding = _xml_encoding(chunk)
                if encoding not in ("utf-8", "latin-1"):
                    decoder = codecs.getincrementaldecoder(encoding)("replace")
            final = chunk == b""
            if decoder is not None:
                chunk = decoder.decode(chunk, final).encode("utf-8")
            try:
                scan.feed(chunk, final=final)
            except TooLong:
                message = f"has an entry in the {self.plan_sheet} sheet over {_megabytes(MAX_CARRY_BYTES)} long"
                raise self.refuse(
                    Rule.BEYOND_LIMITS, f"{message}, far beyond Excel's limits; {SAVE_AS_XLSX}."
                ) from None
            self._check_plan(scan)

        return sink

    def _check_plan(self, scan: SheetScan) -> None:
        sheet, limits = self.plan_sheet, self.limits
        excel = (
            f"beyond Excel's limits (rows up to {EXCEL_MAX_ROWS:,}, columns up to XFD); the file was not saved "
            f"by Excel or is damaged: {SAVE_AS_XLSX} again."
        )
        if scan.dimension is not None:
            rows, columns = dimension_extent(scan.dimension)
            if rows > EXCEL_MAX_ROWS or columns > EXCEL_MAX_COLUMNS:
                size = scan.dimension.decode("latin-1")[:40]
                raise self.refuse(Rule.BEYOND_LIMITS, f"declares the {sheet} sheet's size as {size}, {excel}")
        if max(scan.rows, scan.row_numbers) > EXCEL_MAX_ROWS:
            row = max(scan.rows, scan.row_numbers)
            raise self.refuse(Rule.BEYOND_LIMITS, f"has a row numbered {row:,} in the {sheet} sheet, {excel}")
        if scan.columns > EXCEL_MAX_COLUMNS:
            raise self.refuse(
                Rule.BEYOND_LIMITS, f"has a cell in column number {scan.columns:,} of the {sheet} sheet, {excel}"
            )
        if scan.rows > limits.max_rows:
            raise self.refuse(
                Rule.BEYOND_LIMITS,
                f"uses row {scan.rows:,} of the {sheet} sheet (cell {scan.row_cell}), but Plansheet reads at most "
                f"{limits.max_rows:,} rows; delete the rows below your last plan line and save the workbook again.",
            )
        if scan.columns > limits.max_columns:
            last = column_letter(min(limits.max_columns, EXCEL_MAX_COLUMNS))
            raise self.refuse(
                Rule.BEYOND_LIMITS,
                f"uses column {column_letter(scan.columns)} of the {sheet} sheet (cell {scan.column_cell}), but "
                f"Plansheet reads at most {limits.max_columns:,} columns (up to {last}); delete the columns to the "
                "right of your plan and save the workbook again.",
            )

    def _unsafe(self, part: str) -> UnreadableWorkbook:
        return self.refuse(
            Rule.UNSAFE_XML,
            f"was refused: its part {part} contains a DTD (<!DOCTYPE> or <!ENTITY>), which Excel never writes "
            f"and which is used to attack programs that read XML; {SAVE_AS_XLSX} again.",
        )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


# --- XML prologs: where a DTD would be ------------------------------------------------------------------------

_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def _xml_encoding(head: bytes) -> str:
    """The encoding an XML parser detects from the first bytes: a byte order mark, or UTF-16's '<' and a zero byte."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"<\x00"):
        return "utf-16-le"
    if head.startswith(b"\x00<"):
        return "utf-16-be"
    return "latin-1"  # UTF-8 and every other ASCII-compatible encoding: a prolog's markup is ASCII


def _dtd_in_prolog(head: bytes) -> bool | None:
    """True if XML starting with `head` declares a DTD, False if it cannot, None if `head` ends inside the prolog.

    Only whitespace, the XML declaration, comments and processing instructions may come before a
    DTD; whatever comes first otherwise (the root element, or bytes that are not XML) ends the prolog.
    """
    for size in (512, len(head)):  # the short look almost always decides
        text = head[:size].decode(_xml_encoding(head), errors="replace").lstrip("\ufeff")
        pos = 0
        while match := _PROLOG_ITEM.match(text, pos):
            pos = match.end()
        rest = text[pos:]
        if not (rest in ("", "<", "<!", "<!-") or rest.startswith(("<?", "<!--"))):
            return rest.startswith("<!")
        if size >= len(head):
            break
    return None
