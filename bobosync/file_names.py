"""File names as bobosync stores and shows them.

A name that is not valid in the file system's encoding (a Latin-1 name on a share mounted on a
UTF-8 host; an unpaired surrogate on NTFS) reaches Python with surrogate escapes, which neither
SQLite nor a UTF-8 log file can hold. Such bytes are shown as \\xNN instead, the same every run.
"""
import os


def readable_name(name: str) -> str:
    """`name` itself, or with the bytes it cannot hold as text shown as \\xNN."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name
