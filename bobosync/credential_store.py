"""Secrets in the operating system's credential store, through the `keyring` package.

The rule: a secret setting whose value is the word `keyring` is read from the store (for a proxy URL,
the password written as `keyring`: http://user:keyring@proxy:8080). Each site has its own service
name, `bobosync:<ORG_CODE>@<host[:port] of ATHOC_SERVER_URL>`, and the user name is the setting's name,
so several sites on one server never overwrite each other's secrets. Windows keeps them in the
Credential Manager of the account that stores them (Generic credentials); other systems use the
backend keyring finds.

keyring is imported only here, and this module only when a secret is actually needed: a run with
nothing in the store to read does not pay for it.
"""
from typing import Any, Optional

from url_secrets import service_name  # noqa: F401 - the site's service name, here with the rest of the store

NO_BACKEND_FIX = ("install a credential store backend (Windows: Credential Manager, built in; Linux: a Secret "
                  "Service such as gnome-keyring), or keep the secret in .env")


class StoreError(Exception):
    """The credential store cannot be used (keyring missing, no backend, the backend failed); the message says
    what to do and never holds a secret."""


def _keyring() -> Any:
    try:
        import keyring  # the only import of keyring in bobosync
        import keyring.errors  # noqa: F401 - used by the callers through the module
    except ImportError:
        raise StoreError("the keyring package is not installed: pip install -r requirements.txt") from None
    return keyring


def _backend(kr: Any) -> Any:
    """keyring's backend; StoreError when it found none (its fail.Keyring)."""
    try:
        backend = kr.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a backend that cannot even be loaded
        raise StoreError(f"keyring could not load a backend ({type(exc).__name__}): {NO_BACKEND_FIX}") from None
    if type(backend).__module__.startswith("keyring.backends.fail") or getattr(backend, "priority", 1) <= 0:
        raise StoreError(f"keyring found no credential store on this computer: {NO_BACKEND_FIX}")
    return backend


def backend_name() -> str:
    """The name of the backend in use, as an operator reads it ('WinVaultKeyring', 'PlaintextKeyring', ...)."""
    return type(_backend(_keyring())).__name__


def read_secret(service: str, name: str) -> Optional[str]:
    """The secret `name` of `service`; None when the store holds none."""
    kr = _keyring()
    backend = _backend(kr)
    try:
        stored: Optional[str] = backend.get_password(service, name)
        return stored
    except Exception as exc:  # noqa: BLE001 - locked store, denied access: never a traceback
        raise StoreError(f"the credential store ({type(backend).__name__}) could not be read "
                         f"({type(exc).__name__}): {_plain(exc)}") from None


def store_secret(service: str, name: str, value: str) -> str:
    """Store `value` as `name` of `service`; returns the backend's name."""
    kr = _keyring()
    backend = _backend(kr)
    try:
        backend.set_password(service, name, value)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"the credential store ({type(backend).__name__}) refused to store {name} "
                         f"({type(exc).__name__})") from None  # not its message: the value was passed to it
    return type(backend).__name__


def delete_secret(service: str, name: str) -> bool:
    """Remove `name` of `service`; False when there was none."""
    kr = _keyring()
    backend = _backend(kr)
    if backend.get_password(service, name) is None:
        return False
    try:
        backend.delete_password(service, name)
    except kr.errors.PasswordDeleteError:
        return False
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"the credential store ({type(backend).__name__}) refused to delete {name} "
                         f"({type(exc).__name__}): {_plain(exc)}") from None
    return True


def _plain(exc: BaseException) -> str:
    """A backend's message, first line, short (never from set_password, which was given the secret)."""
    return str(exc).splitlines()[0][:200] if str(exc) else "no detail"
