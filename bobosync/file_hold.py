"""Whether another program still has a file open.

On Windows, BOBO (or Excel, or a copy in progress) keeps an export open while it writes it, and a file
can be quiet for longer than FILE_SETTLE_SECONDS and still be unfinished. Such a file is not settled:
reading and sending it would send half a file, and moving it afterwards fails every minute with
WinError 32. So before a file is read it is opened with no sharing at all (share mode 0), which Windows
refuses with ERROR_SHARING_VIOLATION while any other handle on the file is open, whatever that handle's
own share mode; the handle is closed at once. (A rename probe, as Apache Camel's readLock=rename does,
misses a writer that opened the file with FILE_SHARE_DELETE; the exclusive open does not.)

POSIX has no such refusal: a file open elsewhere can always be opened, renamed and read, and finding
its other openers means scanning every process. There is_held_open() says False, and the settle time
alone decides, as before.
"""
import os
import sys

ERROR_SHARING_VIOLATION = 32


def is_held_open(path: str) -> bool:
    """True when another process has `path` open (Windows only; always False elsewhere).

    Any other failure to open (gone, no permission) is False: reading the file then reports it."""
    if sys.platform != "win32":
        return False
    import ctypes
    from ctypes import wintypes
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p,
                                     wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
    kernel32.CreateFileW.restype = wintypes.HANDLE
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    generic_read, no_sharing, open_existing, file_attribute_normal = 0x80000000, 0, 3, 0x80
    handle = kernel32.CreateFileW(os.fspath(path), generic_read, no_sharing, None, open_existing,
                                  file_attribute_normal, None)
    if handle is None or handle == wintypes.HANDLE(-1).value:
        return ctypes.get_last_error() == ERROR_SHARING_VIOLATION
    kernel32.CloseHandle(handle)
    return False


def move_error_hint(exc: OSError) -> str:
    """What a failed move of a CSV file means, for the log line that reports it."""
    if getattr(exc, "winerror", None) == ERROR_SHARING_VIOLATION:
        return ("another program has the file open (Windows refuses to move a file in use); it is moved once that "
                "program closes it")
    return "check the folder's permissions and free space"
