"""Stream a very large worksheet into an xlsx package without holding or re-compressing it.

The master workbook's Lines sheet holds every plan line. Building it cell by cell through
a workbook library costs far more than reading the plans did, so each worker renders its
own plan's rows as SpreadsheetML and deflates them into an independent, byte-aligned
deflate segment (`Z_SYNC_FLUSH`); concatenated segments form one valid deflate stream, and
their CRC-32s combine without the data (zlib's `crc32_combine`). `splice_sheet` then puts
the segments into a small workbook written by xlsxwriter, in place of one sheet's rows.
"""

from __future__ import annotations

import re
import struct
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sheet_templates.errors import PlansheetError
from sheet_templates.text import printable

LEVEL = 1  # fastest deflate; sheet XML is so repetitive that level 1 already shrinks it ~10x
_ZIP32_MAX = 0xFFFFFFFF
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")


@dataclass(frozen=True, slots=True)
class Segment:
    """Raw-deflated bytes of some sheet rows, with the CRC-32 and length of the uncompressed XML."""

    data: bytes
    crc: int
    size: int
    rows: int = 0


def deflate_segment(xml: bytes, rows: int = 0) -> Segment:
    """Compress `xml` into a segment that can be followed by more deflate data."""
    comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    data = comp.compress(xml) + comp.flush(zlib.Z_SYNC_FLUSH)
    return Segment(data, zlib.crc32(xml), len(xml), rows)


def xml_text(text: str) -> str:
    """Escape text for a SpreadsheetML <t> element (XML specials and the characters XML 1.0 forbids).

    Control characters are kept as Excel's `_x0001_` escapes; unpaired surrogates, which no
    escape a reader decodes could make valid text, become U+FFFD (`printable`).
    """
    if text.isprintable() and "&" not in text and "<" not in text and ">" not in text and "_x" not in text:
        return text  # the common case, decided in C
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if _ILLEGAL_XML.search(text):
        text = _ILLEGAL_XML.sub(
            lambda m: f"_x{ord(m.group()):04X}_" if len(m.group()) == 1 else "_x005F" + m.group(), text
        )
    return printable(text)


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B), by zlib's GF(2) matrix method."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _square(odd)  # two zero bits
    odd = _square(even)  # four zero bits
    while True:
        even = _square(odd)  # apply len2's bits, one zero byte and doubling from there
        if len2 & 1:
            crc1 = _times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _square(even)
        if len2 & 1:
            crc1 = _times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, matrix[n]) for n in range(32)]


class _ZipWriter:
    """The few lines of the zip format an xlsx needs: deflated entries, no zip64."""

    def __init__(self, path: Path) -> None:
        self.fh = path.open("wb")
        self.entries: list[tuple[bytes, int, int, int, int]] = []
        t = time.localtime()
        self.dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
        self.dos_date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday

    def add(self, name: str, data: bytes) -> None:
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.add_deflated(name, [comp.compress(data) + comp.flush()], zlib.crc32(data), len(data))

    def add_deflated(self, name: str, chunks: Sequence[bytes], crc: int, size: int) -> None:
        comp_size = sum(len(c) for c in chunks)
        offset = self.fh.tell()
        if max(size, comp_size, offset + comp_size) > _ZIP32_MAX:
            raise PlansheetError("the master workbook would exceed 4 GB, more than an xlsx file can hold")
        encoded = name.encode()
        self.fh.write(_LOCAL_HEADER.pack(0x04034B50, 20, *self._common(crc, comp_size, size, encoded), 0) + encoded)
        for chunk in chunks:
            self.fh.write(chunk)
        self.entries.append((encoded, crc, comp_size, size, offset))

    def _common(self, crc: int, comp_size: int, size: int, encoded: bytes) -> tuple[int, ...]:
        """The fields local and central headers share: flags (UTF-8 names), deflate, time, sizes."""
        return (0x0800, 8, self.dos_time, self.dos_date, crc, comp_size, size, len(encoded))

    def close(self) -> None:
        start = self.fh.tell()
        for encoded, crc, comp_size, size, offset in self.entries:
            common = self._common(crc, comp_size, size, encoded)
            self.fh.write(_CENTRAL_HEADER.pack(0x02014B50, 20, 20, *common, 0, 0, 0, 0, 0, offset) + encoded)
        end = self.fh.tell()
        self.fh.write(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(self.entries), len(self.entries), end - start, start, 0)
        )
        self.fh.close()


def splice_sheet(package: Path, out: Path, sheet_part: str, segments: Sequence[Segment], last_cell: str) -> None:
    """Copy `package` to `out`, appending the rows in `segments` to `sheet_part`'s sheet data.

    The streamed rows carry no `r` attributes (optional in SpreadsheetML: a row without
    one follows the previous row), so each segment is independent of where it lands.
    """
    with zipfile.ZipFile(package) as src:
        xml = src.read(sheet_part)
        head, sep, tail = xml.partition(b"</sheetData>")
        if not sep:
            head, sep, tail = xml.partition(b"<sheetData/>")
            head, tail = head + b"<sheetData>", tail
        if not sep:
            raise PlansheetError(f"cannot find the sheet data of {sheet_part}")
        head = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_cell}"/>'.encode(), head, count=1)
        tail = b"</sheetData>" + re.sub(rb'<autoFilter ref="[^"]*"', f'<autoFilter ref="A1:{last_cell}"'.encode(), tail)
        first, final = deflate_segment(head), zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        final_data = final.compress(tail) + final.flush()
        crc, size = first.crc, first.size
        for seg in segments:
            crc, size = crc32_combine(crc, seg.crc, seg.size), size + seg.size
        crc, size = crc32_combine(crc, zlib.crc32(tail), len(tail)), size + len(tail)
        writer = _ZipWriter(out)
        try:
            for info in src.infolist():
                if info.filename == sheet_part:
                    chunks = [first.data, *(s.data for s in segments), final_data]
                    writer.add_deflated(info.filename, chunks, crc, size)
                else:
                    writer.add(info.filename, src.read(info))
        finally:
            writer.close()
