"""A corpus of bad uploads, each made by a function that writes one file into a directory.

Most start from a real template built by `build_template` and change it: a part replaced, added
or removed, a header patched. Zip files whose headers must lie are written byte by byte with
`write_zip`, since zipfile only writes the truth. Nothing comes from the network or third parties.
"""

from __future__ import annotations

import random
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from sheet_templates import build_schema, load_config
from sheet_templates.excel_template import build_template

PLAN_PART = "xl/worksheets/sheet2.xml"  # where build_template puts the Plan sheet
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MIB = 2**20


def make_template(path: Path, lines: Iterable[Mapping[str, object]] = (), spare_rows: int | None = None) -> Path:
    """A real regional template, as a marketer downloads it."""
    return build_template(build_schema(load_config()), "EMEA", path, lines=lines, spare_rows=spare_rows)


# --- writing zips part by part ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawPart:
    """One zip entry as stored: its bytes (deflated when method is 8) and what its headers declare."""

    name: str
    stored: bytes
    crc: int
    size: int  # the uncompressed size the headers declare
    method: int = zipfile.ZIP_DEFLATED


def deflated(name: str, data: bytes) -> RawPart:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return RawPart(name, compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data))


def zeros_bomb(name: str, real_size: int, declared_size: int) -> RawPart:
    """A deflate stream of `real_size` zeros made of one repeated block (1 KB per MiB), declaring `declared_size`."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)  # the same bytes every time
    stored = block * (real_size // MIB) + compressor.flush()
    return RawPart(name, stored, _crc_of_zeros(min(real_size, declared_size)), declared_size)


def _crc_of_zeros(size: int) -> int:
    crc, block = 0, bytes(MIB)
    for start in range(0, size, MIB):
        crc = zlib.crc32(block[: min(MIB, size - start)], crc)
    return crc


def read_parts(path: Path) -> list[RawPart]:
    """The entries of a zip exactly as stored, to rewrite them with changes."""
    parts = []
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset)
            header = fh.read(30)
            name_length, extra_length = struct.unpack_from("<HH", header, 26)
            fh.seek(info.header_offset + 30 + name_length + extra_length)
            parts.append(
                RawPart(info.filename, fh.read(info.compress_size), info.CRC, info.file_size, info.compress_type)
            )
    return parts


def write_zip(path: Path, parts: Iterable[RawPart], offsets: Mapping[str, str] | None = None) -> Path:
    """Write a zip byte by byte; `offsets` makes a central entry point at another entry's local header."""
    body, directory, where = bytearray(), bytearray(), {}
    parts = list(parts)
    for part in parts:
        name = part.name.encode()
        where[part.name] = len(body)
        body += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, part.method, 0, 0x21, part.crc, len(part.stored), part.size, len(name), 0
        )
        body += name + part.stored
    for part in parts:
        name = part.name.encode()
        offset = where[(offsets or {}).get(part.name, part.name)]
        directory += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            part.method,
            0,
            0x21,
            part.crc,
            len(part.stored),
            part.size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(parts), len(parts), len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def rebuilt(
    template: Path,
    path: Path,
    *,
    replace_parts: Mapping[str, bytes] | None = None,
    add: Mapping[str, bytes] | None = None,
    drop: Iterable[str] = (),
) -> Path:
    """A copy of `template` with parts replaced, added or dropped (contents given uncompressed)."""
    replace_parts, add, drop = replace_parts or {}, add or {}, set(drop)
    parts = [
        deflated(part.name, replace_parts[part.name]) if part.name in replace_parts else part
        for part in read_parts(template)
        if part.name not in drop
    ]
    return write_zip(path, parts + [deflated(name, data) for name, data in add.items()])


def part_text(template: Path, part: str) -> bytes:
    with zipfile.ZipFile(template) as zf:
        return zf.read(part)


# --- not a workbook at all ---------------------------------------------------------------------------------------


def empty_file(directory: Path) -> Path:
    path = directory / "empty.xlsx"
    path.write_bytes(b"")
    return path


def csv_renamed(directory: Path) -> Path:
    path = directory / "plan.xlsx"
    path.write_text("Line ID,Region,Campaign,Jan\nEMEA-0001,EMEA,Spring launch,1200\n", encoding="utf-8")
    return path


def pdf_file(directory: Path) -> Path:
    path = directory / "budget.xlsx"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n")
    return path


def html_file(directory: Path) -> Path:
    path = directory / "export.xlsx"
    path.write_bytes(b"<!DOCTYPE html>\n<html><body><table><tr><td>EMEA</td></tr></table></body></html>\n")
    return path


def random_bytes(directory: Path) -> Path:
    data = b"\x01\x02" + random.Random(7).randbytes(4094)  # cannot start like a zip or an OLE2 file
    path = directory / "noise.xlsx"
    path.write_bytes(data)
    return path


def _ole2(stream_names: Iterable[str]) -> bytes:
    """An OLE2 compound file header and a directory sector naming `stream_names` (enough to sniff, not to open)."""
    header = OLE2_MAGIC + bytes(16) + struct.pack("<4H", 0x3E, 3, 0xFFFE, 9) + bytes(480)
    directory = b"".join(name.encode("utf-16-le").ljust(64, b"\0") + bytes(64) for name in stream_names)
    return header + directory.ljust(512, b"\0")


def legacy_xls(directory: Path) -> Path:
    path = directory / "plan.xls"
    path.write_bytes(_ole2(["Root Entry", "Workbook", "\x05SummaryInformation"]))
    return path


def legacy_xls_renamed(directory: Path) -> Path:
    path = directory / "plan.xlsx"
    path.write_bytes(_ole2(["Root Entry", "Workbook"]))
    return path


def password_protected(directory: Path) -> Path:
    path = directory / "plan.xlsx"
    path.write_bytes(_ole2(["Root Entry", "EncryptionInfo", "EncryptedPackage", "\x06DataSpaces"]))
    return path


def word_document(directory: Path) -> Path:
    path = directory / "plan.xlsx"
    return write_zip(
        path,
        [
            deflated(
                "[Content_Types].xml", b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
            ),
            deflated("word/document.xml", b"<w:document/>"),
        ],
    )


def plain_zip(directory: Path) -> Path:
    path = directory / "plans.xlsx"
    return write_zip(path, [deflated("notes.txt", b"EMEA plan attached separately\n")])


def opendocument(directory: Path) -> Path:
    path = directory / "plan.xlsx"
    mimetype = b"application/vnd.oasis.opendocument.spreadsheet"
    return write_zip(
        path,
        [
            RawPart("mimetype", mimetype, zlib.crc32(mimetype), len(mimetype), zipfile.ZIP_STORED),
            deflated("content.xml", b"<office:document-content/>"),
        ],
    )


# --- damaged ----------------------------------------------------------------------------------------------------


def truncated(template: Path, directory: Path) -> Path:
    data = template.read_bytes()
    path = directory / "truncated.xlsx"
    path.write_bytes(data[: len(data) * 2 // 3])  # as an interrupted download leaves it: no directory at the end
    return path


def corrupted_bytes(template: Path, directory: Path) -> Path:
    """Bytes in the middle of the Plan sheet's compressed data overwritten, headers intact."""
    parts = read_parts(template)
    plan = next(part for part in parts if part.name == PLAN_PART)
    middle = len(plan.stored) // 2
    damaged = plan.stored[:middle] + bytes(64) + plan.stored[middle + 64 :]
    return write_zip(directory / "corrupted.xlsx", [replace(p, stored=damaged) if p is plan else p for p in parts])


def bad_crc(template: Path, directory: Path) -> Path:
    """The workbook part's data intact but its CRC-32 wrong, in both headers."""
    parts = [replace(p, crc=p.crc ^ 0xFFFF) if p.name == "xl/workbook.xml" else p for p in read_parts(template)]
    return write_zip(directory / "bad-crc.xlsx", parts)


def short_part(template: Path, directory: Path) -> Path:
    """A part whose headers declare more bytes than its data holds (the CRC matches the real data)."""
    parts = [replace(p, size=p.size + 100) if p.name == "xl/styles.xml" else p for p in read_parts(template)]
    return write_zip(directory / "short.xlsx", parts)


def duplicate_part(template: Path, directory: Path) -> Path:
    parts = read_parts(template)
    workbook = next(part for part in parts if part.name == "xl/workbook.xml")
    return write_zip(directory / "twice.xlsx", [*parts, workbook])


# --- too big ------------------------------------------------------------------------------------------------------


def oversized(template: Path, directory: Path, size: int) -> Path:
    """A template padded (sparsely) to `size` bytes."""
    path = directory / "huge.xlsx"
    path.write_bytes(template.read_bytes())
    with open(path, "r+b") as fh:
        fh.truncate(size)
    return path


def many_entries(template: Path, directory: Path, count: int = 1_500) -> Path:
    extra = [deflated(f"xl/media/image{i}.png", b"\x89PNG") for i in range(count)]
    return write_zip(directory / "many.xlsx", read_parts(template) + extra)


def declared_too_big(template: Path, directory: Path) -> Path:
    """An honest zip bomb: a 450 MB part, compressed to 460 KB."""
    bomb = zeros_bomb("xl/media/image1.png", 450 * MIB, 450 * MIB)
    return write_zip(directory / "bomb-450mb.xlsx", [*read_parts(template), bomb])


def high_ratio(template: Path, directory: Path) -> Path:
    """A 20 MB part of zeros stored in about 20 KB: a ratio of 1000 to 1."""
    return write_zip(
        directory / "ratio.xlsx", [*read_parts(template), zeros_bomb("xl/media/image1.png", 20 * MIB, 20 * MIB)]
    )


def lying_bomb(template: Path, directory: Path, real_size: int = 1024 * MIB, part: str = PLAN_PART) -> Path:
    """The Plan sheet's headers say 1,000 bytes; its data inflates to 1 GB."""
    parts = [zeros_bomb(part, real_size, 1_000) if p.name == part else p for p in read_parts(template)]
    return write_zip(directory / "lying-bomb.xlsx", parts)


def overlapping(template: Path, directory: Path) -> Path:
    """Two directory entries pointing at the same local data (the trick of non-recursive zip bombs)."""
    parts = read_parts(template)
    styles = next(part for part in parts if part.name == "xl/styles.xml")
    twin = replace(styles, name="xl/stylez.xml")
    return write_zip(directory / "overlap.xlsx", [*parts, twin], offsets={twin.name: styles.name})


# --- macros ---------------------------------------------------------------------------------------------------------

MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
SHEET_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def macro_extension(template: Path, directory: Path, suffix: str = ".xlsm") -> Path:
    path = directory / f"plan{suffix}"
    path.write_bytes(template.read_bytes())
    return path


def with_vba_project(template: Path, directory: Path) -> Path:
    """A real .xlsm's shape saved under .xlsx: vbaProject.bin plus the macro-enabled content types."""
    types = part_text(template, "[Content_Types].xml").replace(SHEET_MAIN.encode(), MACRO_MAIN.encode())
    types = types.replace(
        b"</Types>", b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>'
    )
    return rebuilt(
        template,
        directory / "plan.xlsx",
        replace_parts={"[Content_Types].xml": types},
        add={"xl/vbaProject.bin": OLE2_MAGIC + bytes(504)},
    )


def macro_content_type_only(template: Path, directory: Path) -> Path:
    types = part_text(template, "[Content_Types].xml").replace(SHEET_MAIN.encode(), MACRO_MAIN.encode())
    return rebuilt(template, directory / "plan.xlsx", replace_parts={"[Content_Types].xml": types})


# --- XML with a DTD ----------------------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    + b"]>\n"
)
XXE = b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


def _with_prolog(xml: bytes, prolog: bytes) -> bytes:
    return prolog + re.sub(rb"\A<\?xml[^>]*\?>\s*", b"", xml)


def workbook_billion_laughs(template: Path, directory: Path) -> Path:
    workbook = _with_prolog(part_text(template, "xl/workbook.xml"), BILLION_LAUGHS)
    workbook = workbook.replace(b'"EMEA"</definedName>', b'"&lol9;"</definedName>')
    return rebuilt(template, directory / "laughs.xlsx", replace_parts={"xl/workbook.xml": workbook})


def workbook_xxe(template: Path, directory: Path) -> Path:
    workbook = _with_prolog(part_text(template, "xl/workbook.xml"), XXE)
    workbook = workbook.replace(b'"EMEA"</definedName>', b"&xxe;</definedName>")
    return rebuilt(template, directory / "xxe.xlsx", replace_parts={"xl/workbook.xml": workbook})


def sheet_billion_laughs(template: Path, directory: Path) -> Path:
    sheet = _with_prolog(part_text(template, PLAN_PART), BILLION_LAUGHS)
    sheet = sheet.replace(b"<t>Line ID</t>", b"<t>&lol9;</t>", 1)
    return rebuilt(template, directory / "sheet-laughs.xlsx", replace_parts={PLAN_PART: sheet})


def sheet_xxe(template: Path, directory: Path) -> Path:
    sheet = _with_prolog(part_text(template, PLAN_PART), XXE)
    sheet = sheet.replace(b"<t>Line ID</t>", b"<t>&xxe;</t>", 1)
    return rebuilt(template, directory / "sheet-xxe.xlsx", replace_parts={PLAN_PART: sheet})


def utf16_workbook_xxe(template: Path, directory: Path) -> Path:
    """The XXE workbook encoded as UTF-16 with a byte order mark, which XML parsers read as well."""
    workbook = _with_prolog(part_text(template, "xl/workbook.xml"), XXE.replace(b'"1.0"', b'"1.0" encoding="UTF-16"'))
    encoded = workbook.decode("utf-8").encode("utf-16")
    return rebuilt(template, directory / "utf16-xxe.xlsx", replace_parts={"xl/workbook.xml": encoded})


def dtd_after_comment(template: Path, directory: Path) -> Path:
    """A DTD hidden in the styles part behind a byte order mark, the XML declaration and a long comment."""
    prolog = b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!--' + b" padding" * 2000 + b" -->\n" + XXE
    styles = _with_prolog(part_text(template, "xl/styles.xml"), prolog)
    return rebuilt(template, directory / "styles-dtd.xlsx", replace_parts={"xl/styles.xml": styles})


# --- the Plan sheet --------------------------------------------------------------------------------------------------


def renamed_plan_sheet(template: Path, directory: Path, new_name: str = "Budget") -> Path:
    workbook = part_text(template, "xl/workbook.xml").replace(b'name="Plan"', f'name="{new_name}"'.encode())
    return rebuilt(template, directory / "no-plan.xlsx", replace_parts={"xl/workbook.xml": workbook})


def with_plan_sheet(template: Path, path: Path, sheet_xml: bytes) -> Path:
    """The template with its Plan sheet's XML replaced."""
    return rebuilt(template, path, replace_parts={PLAN_PART: sheet_xml})


def with_extra_rows(template: Path, path: Path, rows_xml: bytes) -> Path:
    """The template with rows added at the end of the Plan sheet's data."""
    sheet = part_text(template, PLAN_PART).replace(b"</sheetData>", rows_xml + b"</sheetData>", 1)
    return with_plan_sheet(template, path, sheet)


def stray_cell_at_xfd1048576(template: Path, directory: Path) -> Path:
    row = b'<row r="1048576"><c r="XFD1048576" t="n"><v>1</v></c></row>'
    return with_extra_rows(template, directory / "stray-cell.xlsx", row)


def row_two_million(template: Path, directory: Path) -> Path:
    row = b'<row r="2000000"><c r="A2000000" t="n"><v>1</v></c></row>'
    return with_extra_rows(template, directory / "row-2000000.xlsx", row)


def column_beyond_xfd(template: Path, directory: Path) -> Path:
    row = b'<row r="400"><c r="XFE400" t="n"><v>1</v></c></row>'
    return with_extra_rows(template, directory / "beyond-xfd.xlsx", row)


def row_beyond_plansheet(template: Path, directory: Path) -> Path:
    """Within Excel's limits, beyond the rows Plansheet reads: a note typed far below the plan."""
    row = b'<row r="150000"><c r="B150000" t="inlineStr"><is><t>see notes</t></is></c></row>'
    return with_extra_rows(template, directory / "far-below.xlsx", row)


def column_beyond_plansheet(template: Path, directory: Path) -> Path:
    row = b'<row r="400"><c r="GS400" t="n"><v>1</v></c></row>'
    return with_extra_rows(template, directory / "far-right.xlsx", row)


def dimension_beyond_excel(template: Path, directory: Path) -> Path:
    sheet = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFE1048577"', part_text(template, PLAN_PART))
    return with_plan_sheet(template, directory / "dimension.xlsx", sheet)


def implicit_rows_beyond_plansheet(template: Path, directory: Path) -> Path:
    """Rows and cells without r attributes follow the previous ones: here they end at row 100,003."""
    rows = b'<row r="100001"><c r="A100001"><v>1</v></c></row><row><c><v>2</v></c></row><row><c/><c/></row>'
    return with_extra_rows(template, directory / "implicit.xlsx", rows)
