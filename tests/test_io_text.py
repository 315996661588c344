"""Pre-flight checks on text files: every refusal names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from geojepa.errors import InputError
from geojepa.io.textfile import inspect_text, sniff_delimiter


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_plain_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.csv", b"t,a\n2024-01-01,1\n2024-01-02,2")
    info = inspect_text(p)
    assert info.n_lines == 3
    assert info.head == ("t,a", "2024-01-01,1", "2024-01-02,2")
    assert info.encoding == "utf-8-sig"
    assert info.warnings == ()


@pytest.mark.parametrize(
    ("data", "match", "line"),
    [
        (b"", "empty", None),
        (b"\n\n  \n", "only blank lines", None),
        (b"t,a\n2024,\x00\x01\x02\n", "binary", 2),
        (b"t,a\n2024-01-01,1\n2024-01-02,\xff\xfe\n", "not valid utf-8", 3),
    ],
)
def test_refusals(tmp_path: Path, data: bytes, match: str, line: int | None) -> None:
    p = _write(tmp_path, "bad.csv", data)
    with pytest.raises(InputError, match=match) as err:
        inspect_text(p, header_lines=1)
    assert err.value.file == str(p)
    assert err.value.line == line


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        inspect_text(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="folder"):
        inspect_text(tmp_path)


def test_latin1_header_is_read_with_a_warning(tmp_path: Path) -> None:
    p = _write(tmp_path, "hobo.csv", "Date Time,Temp (°C)\n3/17/17 16:30,13.3\n".encode("latin-1"))
    info = inspect_text(p, header_lines=2)
    assert info.encoding == "latin-1"
    assert "Latin-1" in info.warnings[0]
    assert info.head[0] == "Date Time,Temp (°C)"


def test_latin1_byte_in_data_is_an_error_unless_told(tmp_path: Path) -> None:
    p = _write(tmp_path, "x.csv", "t,a\n2024-01-01,1°\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid utf-8") as err:
        inspect_text(p, header_lines=1)
    assert (err.value.line, err.value.column) == (2, 13)
    assert inspect_text(p, encoding="latin-1").encoding == "latin-1"


def test_enormous_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "big.csv", b"t,a\n" + b"1," * 40_000 + b"\n2024,1\n")
    with pytest.raises(InputError, match="long") as err:
        inspect_text(p, max_line_bytes=50_000)
    assert err.value.line == 2


def test_enormous_unterminated_line_across_blocks(tmp_path: Path) -> None:
    p = _write(tmp_path, "big.csv", b"t,a\n" + b"x" * (3 << 20))
    with pytest.raises(InputError, match="longer than") as err:
        inspect_text(p, max_line_bytes=1 << 20)
    assert err.value.line == 2


def test_multibyte_char_split_across_blocks_is_fine(tmp_path: Path) -> None:
    # a UTF-8 degree sign straddling the 1 MiB block boundary must not be called invalid
    line = "2024-01-01,1\n"
    pad = "#" * ((1 << 20) - 4 - len(line) - 1) + "°C\n"
    p = _write(tmp_path, "u.csv", ("t,a\n" + line + pad + line).encode("utf-8"))
    assert inspect_text(p).encoding == "utf-8-sig"


def test_sniff_and_wrong_separator(tmp_path: Path) -> None:
    lines = ["time;a;b", "2024-01-01;1,5;2", "2024-01-02;1;2"]
    assert sniff_delimiter(tmp_path / "f", lines) == ";"
    with pytest.raises(InputError, match="seems to use ';'") as err:
        sniff_delimiter(tmp_path / "f", lines, sep="\t")
    assert err.value.line == 1
    assert "--sep ';'" in err.value.render()
    with pytest.raises(InputError, match="cannot tell the column separator"):
        sniff_delimiter(tmp_path / "f", ["just one field", "another"])
