"""Reading an uploaded CSV or XLSX file row by row, never the whole file at once.

Pure: no models. A CSV is decoded as UTF-8 (a BOM allowed) or else Windows-1252, its delimiter
sniffed from the first 64 KB; an XLSX is read with openpyxl in read-only mode (streamed from the
zip). A file we cannot read raises UnreadableFile with the reason in words.
"""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

CSV, XLSX = "csv", "xlsx"
SAMPLE_BYTES = 64 * 1024
_CHUNK = 1024 * 1024
_DELIMITERS = ",;\t|"
# Old binary Excel (.xls) and other OLE documents start with this signature.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NUMBER = re.compile(r"^[-+]?\d+([.,]\d+)?$")

# A spreadsheet cell may hold up to 32,767 characters; the csv module's default limit is 128 KB.
csv.field_size_limit(1024 * 1024)

Row = tuple[int, list[str]]  # the row's number as a spreadsheet shows it (the header is 1), cells


class UnreadableFile(Exception):
    """The file cannot be imported; str() says why, for the person who uploaded it."""


@dataclass(frozen=True)
class FileInfo:
    format: str
    encoding: str
    delimiter: str
    header: list[str]
    rows_estimate: int


def inspect(path: Path) -> FileInfo:
    """What an uploaded file is: its format (by content, not name), encoding, delimiter, header
    row and about how many data rows it has. Reads the file once, in chunks."""
    fmt = detect_format(path)
    if fmt == XLSX:
        with open_rows(path, format=XLSX) as (header, _rows):
            return FileInfo(XLSX, "", "", header, _xlsx_estimate(path))
    encoding, lines = _csv_encoding(path)
    delimiter = _sniff_delimiter(path, encoding)
    with open_rows(path, format=CSV, encoding=encoding, delimiter=delimiter) as (header, _rows):
        return FileInfo(CSV, encoding, delimiter, header, max(lines - 1, 0))


def detect_format(path: Path) -> str:
    with path.open("rb") as file:
        start = file.read(SAMPLE_BYTES)
    if not start.strip():
        raise UnreadableFile("The file is empty.")
    if start.startswith(b"PK\x03\x04"):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "xl/workbook.xml" in archive.namelist():
                    return XLSX
        raise UnreadableFile(
            "This is a compressed file, not a spreadsheet we can read: upload a CSV or an XLSX "
            "file."
        )
    if start.startswith(_OLE):
        raise UnreadableFile(
            "This is an old Excel file (.xls) or another binary document: save it as XLSX or "
            "CSV and upload that."
        )
    if b"\x00" in start:
        raise UnreadableFile("This is not a text file: upload a CSV or an XLSX file.")
    return CSV


@contextmanager
def open_rows(
    path: Path, *, format: str, encoding: str = "utf-8-sig", delimiter: str = ","
) -> Iterator[tuple[list[str], Iterator[Row]]]:
    """The header (column names, unique) and an iterator over the data rows, each padded or cut
    to the header's width; rows with no value at all are left out."""
    if format == XLSX:
        with _xlsx_rows(path) as rows:
            yield _split_header(rows)
    else:
        with path.open(encoding=encoding, errors="strict", newline="") as file:
            yield _split_header(_csv_rows(file, delimiter))


def _split_header(rows: Iterator[Row]) -> tuple[list[str], Iterator[Row]]:
    first = next(rows, None)
    if first is None:
        raise UnreadableFile("The file has no rows.")
    header = column_names(first[1])
    looks_like_data = [cell for cell in first[1] if "@" in cell or _NUMBER.match(cell)]
    if looks_like_data:
        raise UnreadableFile(
            f"The first row looks like data, not column names (it holds “{looks_like_data[0]}”): "
            "add a header row naming each column."
        )
    width = len(header)
    return header, ((number, (cells + [""] * width)[:width]) for number, cells in rows)


def column_names(cells: list[str]) -> list[str]:
    """Header cells as column names: a blank one is "Column 3", a repeated one "Email (2)"."""
    while cells and not cells[-1]:
        cells = cells[:-1]
    names: list[str] = []
    for position, cell in enumerate(cells, start=1):
        name = cell or f"Column {position}"
        candidate, copy = name, 1
        while candidate in names:
            copy += 1
            candidate = f"{name} ({copy})"
        names.append(candidate)
    return names


def _csv_rows(file: Any, delimiter: str) -> Iterator[Row]:
    reader = csv.reader(file, delimiter=delimiter)
    number = 0
    try:
        for cells in reader:
            number += 1
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                yield number, stripped
    except csv.Error as error:
        raise UnreadableFile(f"The CSV file is broken after row {number}: {error}.") from error
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            f"The file's text is not valid {file.encoding} after row {number}: save it as "
            "“CSV UTF-8” and upload it again."
        ) from error


@contextmanager
def _xlsx_rows(path: Path) -> Iterator[Iterator[Row]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged file
        raise UnreadableFile(f"This spreadsheet cannot be opened: {error}.") from error
    try:
        if not workbook.worksheets:
            raise UnreadableFile("The spreadsheet has no sheet.")
        sheet = workbook.worksheets[0]

        def rows() -> Iterator[Row]:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = [cell_text(value) for value in values]
                if any(cells):
                    yield number, cells

        yield rows()
    finally:
        workbook.close()


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person typed: 42 not 42.0, dates as 2026-09-03."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date | time | Decimal):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    return str(value).strip()


def _csv_encoding(path: Path) -> tuple[str, int]:
    """UTF-8 (with or without a BOM) if the whole file decodes as UTF-8, else Windows-1252;
    and how many lines the file has (a row estimate: quoted newlines count too)."""
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        lines, last = 0, b""
        try:
            with path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    decoder.decode(chunk)
                    lines += chunk.count(b"\n")
                    last = chunk[-1:]
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding, lines + (1 if last not in (b"\n", b"") else 0)
    raise UnreadableFile(
        "The file's text is neither UTF-8 nor Windows-1252: save it as “CSV UTF-8” and upload "
        "it again."
    )


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, errors="replace", newline="") as file:
        sample = file.read(SAMPLE_BYTES)
    # Whole lines only: a line cut in the middle confuses the sniffer.
    if len(sample) == SAMPLE_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        return max(_DELIMITERS, key=first.count) if any(d in first for d in _DELIMITERS) else ","


def _xlsx_estimate(path: Path) -> int:
    """The data rows the first sheet declares (its dimension), 0 when it declares none."""
    workbook = load_workbook(path, read_only=True)
    try:
        rows = workbook.worksheets[0].max_row or 0
    finally:
        workbook.close()
    return max(rows - 1, 0)
