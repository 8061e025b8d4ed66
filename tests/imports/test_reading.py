"""Reading CSV and XLSX files row by row: delimiters, encodings, quoted newlines, and files we
cannot read, each refused in words."""

from pathlib import Path

import pytest
from openpyxl import Workbook

from imports.reading import UnreadableFile, inspect, open_rows


def _write(tmp_path: Path, content: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    info = inspect(path)
    with open_rows(path, format=info.format, encoding=info.encoding, delimiter=info.delimiter) as (
        header,
        rows,
    ):
        return header, list(rows)


def test_it_reads_a_comma_separated_file(tmp_path):
    header, rows = _read(_write(tmp_path, b"First Name,Last Name,Email\nAda,Lovelace,a@x.org\n"))
    assert header == ["First Name", "Last Name", "Email"]
    assert rows == [(2, ["Ada", "Lovelace", "a@x.org"])]


def test_it_sniffs_a_semicolon_separated_file(tmp_path):
    path = _write(tmp_path, b"Name;Email;City\nAda;a@x.org;Paris, France\n")
    assert inspect(path).delimiter == ";"
    assert _read(path)[1] == [(2, ["Ada", "a@x.org", "Paris, France"])]


def test_it_drops_the_byte_order_mark_of_an_excel_utf8_csv(tmp_path):
    header, rows = _read(_write(tmp_path, "\ufeffEmail,Nom\nz@x.org,Zoë\n".encode()))
    assert header == ["Email", "Nom"]
    assert rows[0][1] == ["z@x.org", "Zoë"]


def test_it_keeps_newlines_inside_quoted_cells_and_numbers_rows_as_records(tmp_path):
    path = _write(tmp_path, b'Name,Notes\nAda,"line one\nline two"\nBob,short\n')
    assert _read(path)[1] == [(2, ["Ada", "line one\nline two"]), (3, ["Bob", "short"])]


def test_it_reads_windows_1252_when_the_file_is_not_utf8(tmp_path):
    path = _write(tmp_path, "Name,City\nRenée,Zürich\n".encode("cp1252"))
    assert inspect(path).encoding == "cp1252"
    assert _read(path)[1] == [(2, ["Renée", "Zürich"])]


def test_it_names_blank_and_repeated_columns_and_pads_short_rows(tmp_path):
    header, rows = _read(_write(tmp_path, b"Email,,Email\na@x.org\n\n,,\n"))
    assert header == ["Email", "Column 2", "Email (2)"]
    assert rows == [(2, ["a@x.org", "", ""])]


def test_it_reads_the_first_sheet_of_an_xlsx_file(tmp_path):
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Last Name", "Phone", "Email Opt Out"])
    sheet.append(["Hopper", 5551234, True])
    sheet.append([None, None, None])
    sheet.append(["Turing", 12.5, False])
    path = tmp_path / "people.xlsx"
    book.save(path)
    info = inspect(path)
    assert info.format == "xlsx"
    header, rows = _read(path)
    assert header == ["Last Name", "Phone", "Email Opt Out"]
    assert rows == [(2, ["Hopper", "5551234", "true"]), (4, ["Turing", "12.5", "false"])]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The file is empty."),
        (b"  \n\n", "The file is empty."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel file (.xls)"),
        (b"PK\x03\x04garbage", "not a spreadsheet we can read"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"ada@example.com,Ada\nbob@example.com,Bob\n", "looks like data, not column names"),
        (b"Name,Email\n\x81\x8d\x8f\x90\x9d\n", "neither UTF-8 nor Windows-1252"),
    ],
)
def test_it_refuses_a_file_it_cannot_read_in_words(tmp_path, content, words):
    with pytest.raises(UnreadableFile, match=words.replace("(", r"\(").replace(")", r"\)")):
        inspect(_write(tmp_path, content))


def test_it_refuses_a_damaged_xlsx(tmp_path):
    import zipfile

    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not really>")
    with pytest.raises(UnreadableFile, match="cannot be opened"):
        inspect(path)
