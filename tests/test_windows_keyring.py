"""keyring's Windows backend (WinVaultKeyring, the Windows Credential Manager): a stored secret reads back and
is deleted. keyring is not a requirement of bobosync yet; requirements-dev.txt installs it, with pywin32-ctypes,
on Windows only, for this test. Under Wine the Credential Manager is Wine's implementation, not Windows'."""
import os
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.name != "nt", reason="the Windows Credential Manager (WinVaultKeyring)")


def test_a_secret_stored_in_the_windows_credential_manager_reads_back_and_deletes():
    keyring = pytest.importorskip("keyring")
    assert type(keyring.get_keyring()).__name__ == "WinVaultKeyring", keyring.get_keyring()
    service, user, secret = f"bobosync-test-{uuid.uuid4().hex}", "apiuser", "s3cret-\u00e9-" + uuid.uuid4().hex
    keyring.set_password(service, user, secret)
    try:
        assert keyring.get_password(service, user) == secret
    finally:
        keyring.delete_password(service, user)
    assert keyring.get_password(service, user) is None
