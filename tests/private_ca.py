"""A private CA and a certificate for 127.0.0.1 it issued, for the HTTPS tests.

trustme makes them in the test. Under Windows CPython on Wine cryptography's Rust extension does not load
(a Wine quirk, not Windows), so trustme cannot run there: .ci/windows makes them with trustme on the Linux
side and names their folder in BOBOSYNC_TEST_CA_DIR (ca.pem, and server.pem with the key and the chain)."""
import os
import ssl
from pathlib import Path

import pytest

CA_DIR_VARIABLE = "BOBOSYNC_TEST_CA_DIR"


class PrivateCA:
    """The CA's certificate (`cert_pem`, PEM bytes) and a server certificate for 127.0.0.1 it issued."""

    def __init__(self, folder: Path):
        given = os.environ.get(CA_DIR_VARIABLE)
        if given:
            self.ca_file, self.server_file = Path(given) / "ca.pem", Path(given) / "server.pem"
        else:
            trustme = pytest.importorskip("trustme")
            ca = trustme.CA()
            self.ca_file, self.server_file = folder / "ca.pem", folder / "server.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(self.server_file))
        self.cert_pem = self.ca_file.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting the certificate for 127.0.0.1."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.server_file))
        return context
