"""Windows text files (issue 19, finding 5): a BOBO export saved as UTF-16 with its byte-order mark (Windows
PowerShell 5.1's Out-File, Excel's "Unicode Text"), little- or big-endian, or as UTF-8 with one, is read as
text and sent, not set aside as "not text". Platform-independent: runs on Linux and in the Windows leg."""
import codecs

import pytest

from bobo_csv import detect_encoding
from testsite import assert_final_state, check_all, fault_site, on

EVENTS = [on("10001", "20240617065500"), on("10002", "20240617070000"), on("10003", "20240617071500")]
TEXT = "".join(e.row_a() + "\r\n" for e in EVENTS)
SAVED_AS = {
    "utf-16-le with BOM": codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
    "utf-16-be with BOM": codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    "utf-8 with BOM": codecs.BOM_UTF8 + TEXT.encode("utf-8"),
}


@pytest.mark.parametrize("kind", sorted(SAVED_AS))
def test_an_export_saved_as_windows_text_is_read_and_sent(sim, tmp_path, kind):
    sc = fault_site(sim, tmp_path)
    sc.write_bytes("rota.csv", SAVED_AS[kind], EVENTS)
    output = sc.run()
    check_all(sc)
    assert_final_state(sc)
    assert sc.names(sc.processed_dir) == {"rota.csv"} and not sc.names(sc.failed_dir)
    assert sc.held(sc.logins[0]) == "17/06/2024 06:55:00" and "not text" not in output


@pytest.mark.parametrize("data, expected", [
    (codecs.BOM_UTF16_LE + "BON,1\r\n".encode("utf-16-le"), "utf-16"),
    (codecs.BOM_UTF16_BE + "BON,1\r\n".encode("utf-16-be"), "utf-16"),
    (codecs.BOM_UTF8 + b"BON,1\r\n", "utf-8-sig"),
    (b"BON,1\r\n", "utf-8-sig"),
    ("BON,\u00e9\r\n".encode("cp1252"), "cp1252"),
    (codecs.BOM_UTF16_LE + "BON,1\r\n".encode("utf-16-le") + b"\x00", None),  # an odd byte: cut short
    (codecs.BOM_UTF16_LE + "BON,\x00\r\n".encode("utf-16-le"), None),  # a NUL character: not text
    ("BON,1\r\n".encode("utf-16-le"), None),  # UTF-16 without its byte-order mark: NUL bytes, not text
], ids=["le", "be", "utf-8 bom", "utf-8", "cp1252", "odd length", "nul", "no bom"])
def test_detect_encoding(tmp_path, data, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected
