"""The TLS settings of every connection to AtHoc: TLS 1.2 or newer, trusting SSL_CERT_PATH or certifi's CAs."""
import ssl

from config import Settings


def tls_context(settings: Settings, verify: bool = True) -> ssl.SSLContext:
    """A client context with TLS 1.2 minimum; `verify=False` (DISABLE_SSL_VERIFY) checks no certificate."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cert = settings.ssl_cert_path
    if cert is not None and cert.is_dir():
        context.load_verify_locations(capath=str(cert))
    elif cert is not None:
        context.load_verify_locations(cafile=str(cert))
    else:
        import certifi
        context.load_verify_locations(cafile=certifi.where())
    return context
