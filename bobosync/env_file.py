"""The .env file: where it is looked for, its text, and its lines: a value for each setting named, and a
warning for each line that sets nothing bobosync knows (a misspelt name, a name set twice, a line that is no
NAME=value), so that a mistake in it is never silently ignored.
"""
import codecs
import io
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from setting_table import BOBOSYNC_DIR, PROJECT_DIR

ENV_DIRS_VAR = "BOBOSYNC_TEST_ENV_DIRS"  # test hook (failpoints.py): the folders searched for .env instead


class EnvFileError(Exception):
    """The .env file cannot be read as text; the message says why and what to do."""


def env_file_candidates() -> List[Path]:
    """Where a .env file is looked for, in order: bobosync/.env, then the project root's (the test hook
    BOBOSYNC_TEST_ENV_DIRS names other folders, so that the suite never reads the operator's file)."""
    folders = os.environ.get(ENV_DIRS_VAR)
    if folders is None:
        return [BOBOSYNC_DIR / ".env", PROJECT_DIR / ".env"]
    return [Path(folder) / ".env" for folder in folders.split(os.pathsep) if folder]


def find_env_file(explicit: Optional[str] = None) -> Optional[Path]:
    """The .env to read: --env-file if given (it wins over both places), else bobosync/.env, else the
    project root's."""
    if explicit:
        return Path(explicit).expanduser()
    for candidate in env_file_candidates():
        if candidate.is_file():
            return candidate
    return None


def no_env_file_source() -> str:
    """What a ConfigError says it read when no .env file was found: the paths searched."""
    return "the environment; no .env file found at " + " or ".join(str(c) for c in env_file_candidates())


def env_file_text(env_file: Path) -> str:
    """The .env file's text: UTF-8, with or without the byte-order mark Notepad and PowerShell 5.1 write."""
    try:
        data = env_file.read_bytes()
    except OSError as exc:
        raise EnvFileError(f"{env_file} cannot be read ({exc.strerror}): check the file's permissions") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise EnvFileError(f"{env_file} line {line} is not UTF-8 text: save the file as UTF-8 "
                           f"(Notepad: File, Save as, Encoding UTF-8)") from None


def read_env_file(env_file: Path, known: Sequence[str]) -> Tuple[Dict[str, str], List[str]]:
    """The values the .env file sets, by name (the last line wins, as python-dotenv does), and a warning for
    each line that is no NAME=value, names no setting in `known` or sets a name again."""
    parse_stream = _dotenv_parser().parse_stream  # only when there is a file
    values: Dict[str, str] = {}
    warnings: List[str] = []
    first_line: Dict[str, int] = {}
    # taken as written, without interpolation (python-dotenv would turn ab${HOME}cd into ab/rootcd)
    for binding in parse_stream(io.StringIO(env_file_text(env_file))):
        text = binding.original.string
        leading = text[:len(text) - len(text.lstrip("\r\n"))]  # blank lines python-dotenv counts into this one
        line = binding.original.line + leading.count("\n")  # \r\n (Notepad's line end) is one line, not two
        if binding.key is None and not binding.error:
            continue  # a comment or an empty line
        key = binding.key or ""
        if binding.error or binding.value is None or not _looks_like_a_name(key):
            # the line is not shown: it may be a password pasted on a line of its own
            warnings.append(f"{env_file} line {line} is not NAME=value and is ignored")
            continue
        if key in first_line:
            warnings.append(f"{env_file} line {line} sets {key} again (first set at line {first_line[key]}): "
                            f"the value at line {line} is used; remove the other line")
        else:
            first_line[key] = line
        if key not in known:
            warnings.append(f"{env_file} line {line}: {key} is not a bobosync setting and is ignored"
                            f"{_did_you_mean(key, known)}")
        values[key] = binding.value
    return values, warnings


def _dotenv_parser() -> Any:
    """python-dotenv's parser module, without the package around it. `import dotenv.parser` first runs the
    package's __init__, which loads dotenv.main and with it tempfile, shutil and random, none of which the parser
    needs: about 4 ms of CPU, a tenth of a run with nothing to do. The parser itself imports only codecs, re and
    typing. Where it is not a plain file next to the package's __init__ (a zipped install), the usual import."""
    import importlib.util
    package = importlib.util.find_spec("dotenv")
    folders = list(package.submodule_search_locations or []) if package is not None else []
    path = os.path.join(folders[0], "parser.py") if folders else ""
    spec = importlib.util.spec_from_file_location("dotenv.parser", path) if os.path.isfile(path) else None
    if spec is None or spec.loader is None:
        from dotenv import parser
        return parser
    module = importlib.util.module_from_spec(spec)  # not put in sys.modules: `import dotenv` stays whole
    spec.loader.exec_module(module)
    return module


def _looks_like_a_name(key: str) -> bool:
    """Letters, digits and _, not starting with a digit: what a setting's name can be."""
    return key.replace("_", "a").isalnum() and key.isascii() and not key[:1].isdigit()


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    """'; did you mean NAME?' with the closest known setting's name, or ''."""
    import difflib  # only for a name that is wrong
    names = [name for name in known if name.isupper()]  # the settings, not the lower-case proxy fallbacks
    same = [name for name in names if name == key.upper()]
    close = same or difflib.get_close_matches(key.upper(), names, n=1, cutoff=0.7)
    return f"; did you mean {close[0]}?" if close else ""
