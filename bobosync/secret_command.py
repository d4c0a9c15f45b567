"""--store-secret NAME [--delete]: put one secret of this site in the credential store, or remove it.

The value is typed without echo (getpass) on a terminal, or read as one line from standard input when
that is not a terminal (scripted set-up: `echo %SECRET% | python bobo_processor.py --store-secret ...`
or a pipe from a vault tool). Only the setting's name and the store's service name are ever printed.
"""
import sys
from typing import Optional, TextIO

from config import PROXY, SETTINGS, ConfigError, read_some
from results import EXIT_CONFIG, EXIT_OK

SECRET_NAMES = tuple(s.name for s in SETTINGS if s.secret)
_PROXY_NAMES = tuple(s.name for s in SETTINGS if s.secret and s.kind == PROXY)


def _fail(message: str) -> int:
    print(f"bobosync --store-secret: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _read_value(name: str, stdin: TextIO) -> str:
    """The secret: typed without echo on a terminal, else the first line of standard input."""
    what = f"the password of the proxy in {name}" if name in _PROXY_NAMES else name
    if stdin.isatty():
        import getpass
        return getpass.getpass(f"{what} (not shown): ")
    line = stdin.readline()
    return line.rstrip("\r\n")


def _how_to_use(name: str) -> str:
    if name in _PROXY_NAMES:
        return (f"write the proxy's password in {name} as the word keyring, e.g. {name}=http://user:keyring@proxy:8080 "
                f"(the stored password is used as typed; it needs no percent-encoding)")
    return f"set {name}=keyring in .env"


def store_command(name: str, delete: bool = False, env_file: Optional[str] = None,
                  stdin: Optional[TextIO] = None) -> int:
    """Store (or with `delete` remove) the secret `name` for this site; the exit code."""
    name = name.strip().upper()
    if name not in SECRET_NAMES:
        return _fail(f"{name or '(empty)'} is not a secret setting: use one of {', '.join(SECRET_NAMES)}")
    try:
        site = read_some(("ATHOC_SERVER_URL", "ORG_CODE"), env_file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print("The credential store keeps secrets per site (ORG_CODE and ATHOC_SERVER_URL): set those first.",
              file=sys.stderr)
        return EXIT_CONFIG
    from credential_store import StoreError, delete_secret, service_name, store_secret
    service = service_name(site["ORG_CODE"], site["ATHOC_SERVER_URL"])
    try:
        if delete:
            removed = delete_secret(service, name)
            print(f"{name} {'removed from' if removed else 'was not in'} the credential store for {service}")
            return EXIT_OK
        value = _read_value(name, stdin or sys.stdin)
        if not value.strip():
            return _fail(f"nothing was typed: {name} not stored")
        backend = store_secret(service, name, value)
    except StoreError as exc:
        return _fail(str(exc))
    except (EOFError, KeyboardInterrupt):
        return _fail(f"cancelled: {name} not stored")
    print(f"{name} stored in the credential store ({backend}) for {service}; now {_how_to_use(name)}")
    return EXIT_OK
