"""How a BOBO file's bytes become text: the encoding, the byte-order mark, and the hash of what was read.

Windows tools write UTF-16 with a byte-order mark (PowerShell 5.1's Out-File, Excel's "Unicode Text")
or UTF-8 with or without one; older ones Windows-1252. The bytes are hashed as they are read, so what
bobosync remembers of a file is what it read and sent.
"""
import codecs
import hashlib
import io
from pathlib import Path
from typing import Optional

READ_CHUNK = 1 << 20


def detect_encoding(path: Path) -> Optional[str]:
    """'utf-8-sig', 'utf-16' or 'cp1252' (the fallback), or None when the bytes are not text.

    A file starting with a UTF-16 byte-order mark, little- or big-endian (Windows PowerShell 5.1's
    Out-File, Excel's "Unicode Text"), is read as UTF-16 and only as that; any other as UTF-8, with or
    without its byte-order mark, else as Windows-1252. Text with a NUL character is not text."""
    with open(path, "rb") as handle:
        start = handle.read(2)
    utf16 = start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as handle:
                while True:
                    chunk = handle.read(READ_CHUNK)
                    if "\x00" in decoder.decode(chunk, final=not chunk):
                        return None
                    if not chunk:
                        return encoding
        except UnicodeDecodeError:
            continue
    return None


def without_bom(text: str) -> str:
    """`text` without a leading byte-order mark, also as Windows-1252 reads UTF-8's ('ï»¿')."""
    for mark in ("\ufeff", codecs.BOM_UTF8.decode("cp1252")):
        if text.startswith(mark):
            return text[len(mark):]
    return text


class HashingReader(io.RawIOBase):
    """A binary file that adds every byte read to a SHA-256, so what is remembered is what was read."""

    def __init__(self, raw: "io.BufferedReader"):
        super().__init__()
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview") -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer) or 0
        if n:
            self.digest.update(memoryview(buffer)[:n])
            self.size += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()
