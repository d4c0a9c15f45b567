"""The user information of URLs: taken whole, masked whole, and checked, so no password inside a URL leaks.

urlsplit ends a URL's host part at the first #, / or ? even inside a password, so the user
information is taken by hand as everything between :// and the last @.
"""
import re
from typing import List
from urllib.parse import quote, unquote, urlsplit


def user_info(url: str) -> str:
    """The user information of `url`: everything between :// and the last @ ('' when none). Taken by hand,
    not with urlsplit, which ends the host part at the first #, / or ? even inside a password."""
    if not url or "://" not in url:
        return url.rpartition("@")[0] if url and "@" in url else ""
    return url.split("://", 1)[1].rpartition("@")[0]


def url_password(url: str) -> str:
    """The password in a URL such as http://user:password@proxy:8080 ('' when none)."""
    info = user_info(url)
    return info.split(":", 1)[1] if ":" in info else ""


def without_userinfo(url: str) -> str:
    """`url` with its whole user information, if any, shown as *** (http://***@proxy:8080)."""
    info = user_info(url)
    if not info:
        return url
    if "://" not in url:
        return "***@" + url.rpartition("@")[2]
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def without_password(url: str) -> str:
    """`url` with its user information, if any, shown as *** (see without_userinfo)."""
    return without_userinfo(url)


def unusable_proxy_url(url: str) -> str:
    """Why proxy URL `url` cannot be used as written ('' when it can): its user information holds a
    character that ends the host part (#, /, ?, @) or a % that is not an escape, so requests would read
    another host or port, or the password cut short."""
    info = user_info(url)
    if info and (re.search(r"[#/?@]", info) or re.search(r"%(?![0-9A-Fa-f]{2})", info)):
        return ("its user name or password holds a character that must be percent-encoded in a URL "
                "(# as %23, / as %2F, ? as %3F, @ as %40, % as %25)")
    problem = host_and_port_problem(url) if url else ""
    return problem


def host_and_port_problem(url: str) -> str:
    """What is wrong with the host or port of `url` ('' when nothing is)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"does not parse ({_plain(exc)})"
    if not host:
        return "has no host name"
    if port == 0:
        return "has port 0"
    if not valid_dns_name(host):
        return "has a host name that is not a valid DNS name"
    if re.search(r"[\s<>\"{}|\\^`]", parts.netloc):
        return "has a space or a character no web address may hold in its host"
    return ""


def valid_dns_name(host: str) -> bool:
    """Whether `host` encodes as IDNA, as requests will encode it. An ASCII name is checked here the way the
    codec checks one (no empty label but a last one, no label of 64 characters or more), so that a run does not
    import the IDNA codec and its Unicode tables (1 ms) for the usual ASCII server name."""
    if host.isascii():
        labels = host.split(".")
        return all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def _plain(exc: BaseException) -> str:
    """The message of a urllib.parse ValueError in words an operator reads."""
    text = str(exc)
    if "Port" in text or "port" in text:
        return "the port is not a number from 1 to 65535"
    if "IPv6" in text or "[" in text:
        return "an unclosed or invalid [IPv6] address"
    return text[:80]


def secret_forms(secret: str) -> List[str]:
    """`secret` as written, percent-decoded and percent-encoded (as a URL or a form body carries it)."""
    forms = {secret}
    try:
        forms.add(unquote(secret, errors="strict"))
    except UnicodeError:
        pass
    for encoded in (quote(secret, safe=""), quote(secret, safe="").replace("%20", "+")):
        forms.add(encoded)
    return [f for f in forms if f]


def service_name(org_code: str, server_url: str) -> str:
    """The credential store's service of one bobosync site: bobosync:<ORG_CODE>@<host[:port]> (the user name is
    the setting's name), so sites on one server keep their own secrets."""
    parts = urlsplit(server_url)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"bobosync:{org_code}@{host}{port}"
