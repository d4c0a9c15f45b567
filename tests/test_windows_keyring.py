"""keyring's Windows backend (WinVaultKeyring, the Windows Credential Manager): a stored secret reads back and
is deleted. keyring is a requirement of bobosync; requirements-dev.txt adds pywin32-ctypes, its Windows-only
dependency, by name. Under Wine the Credential Manager is Wine's implementation, not Windows'."""
import os
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.name != "nt", reason="the Windows Credential Manager (WinVaultKeyring)")


def test_a_secret_stored_in_the_windows_credential_manager_reads_back_and_deletes():
    pytest.importorskip("keyring")
    from keyring.backends.Windows import WinVaultKeyring
    store = WinVaultKeyring()  # the backend itself: other tests point the process's keyring at a file backend
    assert store.priority > 0, "WinVaultKeyring is not usable here (is pywin32-ctypes installed?)"
    service, user, secret = f"bobosync-test-{uuid.uuid4().hex}", "apiuser", "s3cret-\u00e9-" + uuid.uuid4().hex
    store.set_password(service, user, secret)
    try:
        assert store.get_password(service, user) == secret
    finally:
        store.delete_password(service, user)
    assert store.get_password(service, user) is None
