"""An AtHoc stand-in that serves the REST calls of docs/athoc-api.md over real HTTP(S).

Tests run every request of the project against it, and operators without an AtHoc
test instance can rehearse with it:

    python athoc_simulator.py --port 8080 --users 500 --org DEMO

Standard library only. Faults (status codes, delays, dropped or truncated replies,
revoked tokens) are injected with `fail()`; every request is recorded in `requests`,
and `busy_seconds` adds up the time spent serving them (benchmarks subtract it).
"""
import argparse
import json
import re
import secrets
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, urlsplit

GONE_DETAILS = "User {login} does not exists in the Organization"
UNKNOWN_ATTRIBUTE_DETAILS = "Attribute {name} is not defined for the organization"
DEFAULT_ATTRIBUTES = ("Collar-Number", "FIRSTNAME", "LASTNAME", "On-Duty-DTG")


@dataclass
class RecordedRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    query: Dict[str, str]  # parameter names lower-cased (IIS ignores their case)
    body: Any  # parsed JSON or form dict; raw text when neither
    authorized: bool


@dataclass
class Fault:
    """A fault to inject into matching requests, `times` times (None: until cleared)."""

    path: str  # regular expression searched in the lower-cased path
    method: Optional[str] = None
    status: Optional[int] = None
    body: Optional[bytes] = None
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    redirect_to: Optional[str] = None  # a base URL: answer `status` (3xx) with Location: redirect_to + path
    times: Optional[int] = 1


@dataclass
class Update:
    """One record SyncByCommonNames applied, as the soak test checks their order: the LOGIN_ID, each
    attribute's value before and after, and the time of AtHoc's clock (the Date it would send) when applied."""

    login: str
    before: Dict[str, Any]
    after: Dict[str, Any]
    at: float


# --- Criteria: <FIELD> eq '<value>' | <FIELD> pr, joined with and / or, parentheses ---

_TOKEN = re.compile(r"\s*(?:(\()|(\))|'((?:[^']|'')*)'|([^\s()']+))")


def _tokenize(text: str) -> List[Tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read criteria at position {pos}: {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group(1):
            tokens.append(("(", "("))
        elif m.group(2):
            tokens.append((")", ")"))
        elif m.group(3) is not None:
            tokens.append(("str", m.group(3).replace("''", "'")))
        else:
            tokens.append(("word", m.group(4)))
    return tokens


class _CriteriaParser:
    """Recursive descent: or-expr := and-expr ('or' and-expr)*; and-expr := term ('and' term)*."""

    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0

    def parse(self) -> Callable[[Dict[str, Any]], bool]:
        expr = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos][1]!r} in criteria")
        return expr

    def _peek_word(self, word: str) -> bool:
        return (self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word"
                and self.tokens[self.pos][1].lower() == word)

    def _or(self):
        parts = [self._and()]
        while self._peek_word("or"):
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        names = {getattr(p, "eq", (None,))[0] for p in parts}
        if len(names) == 1 and None not in names:  # F eq 'a' or F eq 'b' ...: one set look-up
            name = str(names.pop())
            wanted = {p.eq[1] for p in parts}
            def one_of(user):
                value = _get_attr(user, name)
                return str(value if value is not None else "") in wanted
            return one_of
        return lambda user: any(p(user) for p in parts)

    def _and(self):
        parts = [self._term()]
        while self._peek_word("and"):
            self.pos += 1
            parts.append(self._term())
        if len(parts) == 1:
            return parts[0]  # keeps a lone term's .eq, for _or's set look-up
        return lambda user: all(p(user) for p in parts)

    def _next(self) -> Tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ValueError("criteria ends too early")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _term(self):
        kind, value = self._next()
        if kind == "(":
            inner = self._or()
            if self._next()[0] != ")":
                raise ValueError("missing ')' in criteria")
            return inner
        if kind != "word":
            raise ValueError(f"expected a field name, got {value!r}")
        name = value
        op_kind, op = self._next()
        if op_kind == "word" and op.lower() == "pr":
            return lambda user: _get_attr(user, name) not in (None, "")
        if op_kind == "word" and op.lower() == "eq":
            kind, wanted = self._next()
            if kind != "str":
                raise ValueError(f"eq needs a quoted value, got {wanted!r}")
            def equals(user):
                value = _get_attr(user, name)
                return str(value if value is not None else "") == wanted
            equals.eq = (name, wanted)  # type: ignore[attr-defined]
            return equals
        raise ValueError(f"unknown operator {op!r}: supported are eq and pr")


def compile_criteria(text: str) -> Callable[[Dict[str, Any]], bool]:
    """A predicate over a user's attributes (field names case-insensitive)."""
    return _CriteriaParser(text).parse()


def _get_attr(user: Dict[str, Any], name: str) -> Any:
    if name in user:  # the usual spelling: no scan (a user holds each attribute under one spelling)
        return user[name]
    lname = name.lower()
    for key, value in user.items():
        if key.lower() == lname:
            return value
    return None


# --- The server ---

class AtHocSimulator:
    """AtHoc REST stand-in on loopback. Use as a context manager or start()/stop()."""

    def __init__(self, org: str = "DEMO", client_id: str = "bobosync-sim", client_secret: str = "sim-client-secret",
                 username: str = "apiuser", password: str = "sim-password", scope: str = "athoc.iws.web.api",
                 token_ttl: int = 3600, host: str = "127.0.0.1", port: int = 0,
                 certfile: Optional[str] = None, keyfile: Optional[str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None):
        self.org, self.client_id, self.client_secret = org, client_id, client_secret
        self.username, self.password, self.scope, self.token_ttl = username, password, scope, token_ttl
        self.users: Dict[str, Dict[str, Any]] = {}
        # the organisation's user attributes (matched case-insensitively); SyncByCommonNames answers a record
        # setting any other with an Error naming it. Users added bring their attributes.
        self.attributes: Set[str] = set(DEFAULT_ATTRIBUTES)
        # True imitates a server that refuses (400) a Criteria naming an attribute it does not know; the
        # contract does not say what AtHoc does, so by default such a criteria just matches nobody
        self.strict_criteria = False
        self.clock_skew_seconds = 0.0  # added to the Date header of every reply (AtHoc's clock is off)
        # called with the page index before each search page is served: a test's way to change the users
        # while a listing is read (a user deleted between pages shifts the later pages)
        self.on_search: Optional[Callable[[int], None]] = None
        self.tokens: Dict[str, float] = {}
        self.issued_tokens: List[str] = []  # every token ever issued, kept after revocation (for leak checks)
        self.requests: List[RecordedRequest] = []
        self.busy_seconds = 0.0  # time spent serving requests, from the request line read to the reply sent
        self.in_flight = 0  # requests being served now (one held back by a delay, after its client gave up)
        self.faults: List[Fault] = []
        self.updates: List[Update] = []  # every record applied, in order (a test empties it once checked)
        self.reject: Dict[str, Tuple[str, str]] = {}  # login -> (:SyncStatus, :SyncDetails)
        self.total_users_bias = 0  # added to TotalUsers, to imitate a listing that changes under us
        # logins a listing of every user misses, its TotalUsers agreeing (a user deleted while the pages were read
        # shifts the next page by one); a criteria query still finds them
        self.hidden_from_listing: Set[str] = set()
        self.short_results = 0  # SyncByCommonNames leaves off this many results
        # (matching users, page, limit) -> the users a search page serves; None pages correctly.
        # Imitates a server whose pages overlap, repeat or come back short
        self.page_rows: Optional[Callable[[List[Dict[str, Any]], int, int], List[Dict[str, Any]]]] = None
        # called with the records of each SyncByCommonNames call before it is answered: a test's way to act
        # "while the AtHoc call is in flight" (change a file, stop a process)
        self.on_sync: Optional[Callable[[List[Any]], None]] = None
        self.lock = threading.RLock()
        self._server = _Server((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.simulator = self  # type: ignore[attr-defined]
        context = ssl_context
        if context is None and certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
        self.scheme = "https" if context else "http"
        if context:
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: Optional[threading.Thread] = None

    # lifecycle
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> "AtHocSimulator":
        # polled every 10 ms for stop(), which waits for that (tests start and stop hundreds)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), name="athoc-simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "AtHocSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # state
    def add_user(self, login_id: str, **attributes: Any) -> None:
        with self.lock:
            self.users[login_id] = {"LOGIN_ID": login_id, **attributes}
            self.attributes.update(attributes)

    def remove_user(self, login_id: str) -> None:
        with self.lock:
            self.users.pop(login_id, None)

    def knows_attribute(self, name: str) -> bool:
        with self.lock:
            return name.upper() == "LOGIN_ID" or name.lower() in {a.lower() for a in self.attributes}

    def seed_users(self, count: int, collar_field: str = "Collar-Number", first_collar: int = 10001,
                   domain: Optional[str] = None) -> List[str]:
        """Add `count` users with collar numbers first_collar, first_collar+1, …; return their LOGIN_IDs."""
        domain = domain or f"{self.org.lower()}.example"
        logins = []
        for i in range(count):
            collar = first_collar + i
            login = f"user{collar}@{domain}"
            self.add_user(login, **{collar_field: str(collar), "FIRSTNAME": "Officer", "LASTNAME": f"No{collar}"})
            logins.append(login)
        return logins

    def attribute(self, login_id: str, name: str) -> Any:
        with self.lock:
            return _get_attr(self.users[login_id], name)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until no request is being served (a delayed one has been applied)."""
        end = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < end:
            time.sleep(0.01)
        return not self.in_flight

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def fail(self, path: str = "", status: Optional[int] = None, times: Optional[int] = 1, *,
             method: Optional[str] = None, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
             retry_after: Optional[float] = None, delay: float = 0.0, drop: bool = False,
             truncate: bool = False) -> Fault:
        """Inject a fault into requests whose lower-cased path matches the regular expression `path`."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        fault = Fault(path=path.lower(), method=method, status=status, body=body, headers=hdrs,
                      delay=delay, drop=drop, truncate=truncate, times=times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def redirect(self, path: str, to_url: str, status: int = 307, times: Optional[int] = 1) -> Fault:
        """Answer requests matching `path` with a redirect (`status`) to the same path and query on `to_url`
        (another server, say a second simulator): AtHoc's API never redirects, so a client must not follow."""
        fault = Fault(path=path.lower(), status=status, redirect_to=to_url.rstrip("/"), times=times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests_to(self, path_part: str, method: Optional[str] = None) -> List[RecordedRequest]:
        """Recorded requests whose path contains `path_part` (case-insensitive)."""
        with self.lock:
            return [r for r in self.requests if path_part.lower() in r.path.lower()
                    and (method is None or r.method == method)]

    def _take_fault(self, method: str, path: str) -> Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if (fault.method is None or fault.method == method) and re.search(fault.path, path.lower()):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # the endpoints; each returns (status, payload)
    def handle(self, method: str, path: str, query: Dict[str, str], body: Any,
               token: Optional[str]) -> Tuple[int, Any]:
        lpath = path.lower().rstrip("/")
        if lpath == "/authservices/auth/connect/token" and method == "POST":
            return self._token(body if isinstance(body, dict) else {})
        m = re.fullmatch(r"/api/v2/orgs/([^/]+)/users/(search/basic|syncbycommonnames)", path.rstrip("/"),
                         flags=re.IGNORECASE)
        if not m:
            return 404, {"Message": f"No HTTP resource was found that matches the request URI '{path}'."}
        if not self._token_valid(token):
            return 401, {"Message": "Authorization has been denied for this request."}
        if m.group(1) != self.org:
            return 404, {"Message": f"Organization {m.group(1)} not found"}
        if m.group(2).lower() == "search/basic" and method == "GET":
            return self._search(query)
        if m.group(2).lower() == "syncbycommonnames" and method == "POST":
            return self._sync(query, body)
        return 405, {"Message": "The requested resource does not support this method."}

    def _token(self, form: Dict[str, str]) -> Tuple[int, Any]:
        if form.get("grant_type") != "password":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 400, {"error": "invalid_client"}
        if (form.get("username") != self.username or form.get("password") != self.password
                or form.get("acr_values") != f"tenant:{self.org}"):
            return 400, {"error": "invalid_grant", "error_description": "invalid_username_or_password"}
        if form.get("scope") != self.scope:
            return 400, {"error": "invalid_scope"}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
            self.issued_tokens.append(token)
        return 200, {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}

    def _token_valid(self, token: Optional[str]) -> bool:
        with self.lock:
            expiry = self.tokens.get(token or "")
        return expiry is not None and expiry > time.monotonic()

    def _search(self, query: Dict[str, str]) -> Tuple[int, Any]:
        try:
            limit = int(query.get("limit", "100"))
            page = int(query.get("offset", "0"))
        except ValueError:
            return 400, {"Message": "Limit and Offset must be whole numbers"}
        if not 1 <= limit <= 1000 or page < 0:
            return 400, {"Message": "Limit must be 1 to 1000 and Offset a page index from 0"}
        fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
        try:
            match = compile_criteria(query["criteria"]) if query.get("criteria") else (lambda u: True)
        except ValueError as exc:
            return 400, {"Message": f"Invalid criteria: {exc}"}
        if self.strict_criteria and query.get("criteria"):
            unknown = [w for kind, w in _tokenize(query["criteria"])
                       if kind == "word" and w.lower() not in ("eq", "pr", "and", "or") and not self.knows_attribute(w)]
            if unknown:
                return 400, {"Message": f"Invalid criteria: attribute {unknown[0]} is not defined for the organization"}
        if self.on_search is not None:
            self.on_search(page)
        with self.lock:
            matching = [u for u in self.users.values() if match(u)
                        and (query.get("criteria") or u["LOGIN_ID"] not in self.hidden_from_listing)]
            bias = self.total_users_bias
        page_rows = self.page_rows
        chunk = page_rows(matching, page, limit) if page_rows else matching[page * limit:(page + 1) * limit]
        users = []
        for user in chunk:
            row = {"LOGIN_ID": user["LOGIN_ID"]}
            for name in fields:
                if name.upper() != "LOGIN_ID":
                    value = _get_attr(user, name)
                    if value is not None:
                        row[name] = value
            users.append(row)
        return 200, {"Users": users, "TotalUsers": len(matching) + bias, "FetchedRecords": len(users)}

    def _sync(self, query: Dict[str, str], body: Any) -> Tuple[int, Any]:
        if not isinstance(body, list):
            return 400, {"Message": "The request body must be a JSON array of users"}
        if self.on_sync is not None:
            self.on_sync(body)
        existing_only = query.get("syncexistingusersonly", "false").lower() == "true"
        results = []
        with self.lock:
            for item in body:
                if not isinstance(item, dict) or not _get_attr(item, "LOGIN_ID"):
                    results.append({"LOGIN_ID": None, ":SyncStatus": "Error", ":SyncDetails": "LOGIN_ID is required"})
                    continue
                login = str(_get_attr(item, "LOGIN_ID"))
                if login in self.reject:
                    status, details = self.reject[login]
                    results.append({"LOGIN_ID": login, ":SyncStatus": status, ":SyncDetails": details})
                    continue
                if login not in self.users:
                    if existing_only:
                        results.append({"LOGIN_ID": login, ":SyncStatus": "Error",
                                        ":SyncDetails": GONE_DETAILS.format(login=login)})
                        continue
                    self.users[login] = {"LOGIN_ID": login}
                unknown = [k for k in item if not self.knows_attribute(k)]
                if unknown:
                    results.append({"LOGIN_ID": login, ":SyncStatus": "Error",
                                    ":SyncDetails": UNKNOWN_ATTRIBUTE_DETAILS.format(name=unknown[0])})
                    continue
                user = self.users[login]
                before: Dict[str, Any] = {}
                for key, value in item.items():
                    if key.upper() == "LOGIN_ID":
                        continue
                    existing = next((k for k in user if k.lower() == key.lower()), key)
                    before[existing] = user.get(existing)
                    user[existing] = value
                self.updates.append(Update(login, before, {k: v for k, v in item.items() if k.upper() != "LOGIN_ID"},
                                           time.time() + self.clock_skew_seconds))
                results.append({"LOGIN_ID": login, ":SyncStatus": "OK", ":SyncDetails": ""})
            short = self.short_results
        return 200, results[:len(results) - short] if short else results


class _Server(ThreadingHTTPServer):
    """Quiet about a client that went away before its reply was written (it gave up after its timeout,
    or a fault cut the connection): socketserver would print a traceback to stderr, from a thread, into
    whatever is writing there at that moment."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AtHocSimulator/1.0"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

    def parse_request(self) -> bool:
        self._started = time.perf_counter()  # the request line is in; waiting for it is not serving time
        return super().parse_request()

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """The Date header: this computer's clock plus the simulator's clock_skew_seconds."""
        sim: AtHocSimulator = self.server.simulator  # type: ignore[attr-defined]
        return super().date_time_string((time.time() if timestamp is None else timestamp) + sim.clock_skew_seconds)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: tests read `requests` instead

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _read_body(self) -> Tuple[Any, bool]:
        """The body (parsed JSON or form dict; raw text when neither), and whether all of it arrived."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return self._parse_body(raw), len(raw) == length

    def _parse_body(self, raw: bytes) -> Any:
        text = raw.decode("utf-8", "replace")
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            try:
                return json.loads(text)
            except ValueError:
                return text
        if "x-www-form-urlencoded" in ctype:
            return dict(parse_qsl(text, keep_blank_values=True))
        return text

    def _serve(self, method: str) -> None:
        sim: AtHocSimulator = self.server.simulator  # type: ignore[attr-defined]
        started = getattr(self, "_started", None) or time.perf_counter()
        with sim.lock:
            sim.in_flight += 1
        try:
            self._serve_request(sim, method)
        finally:
            elapsed = time.perf_counter() - started
            with sim.lock:
                sim.busy_seconds += elapsed
                sim.in_flight -= 1

    def _serve_request(self, sim: "AtHocSimulator", method: str) -> None:
        parts = urlsplit(self.path)
        query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        body, whole = self._read_body()
        if not whole:  # the client went away mid-request (a run killed while sending): as a server does, the
            self.close_connection = True  # incomplete request is neither recorded nor answered
            return
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        with sim.lock:
            sim.requests.append(RecordedRequest(method, parts.path, query, body, token is not None))
        fault = sim._take_fault(method, parts.path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            self.close_connection = True
            self.connection.close()
            return
        if fault and fault.redirect_to is not None:
            self._send(fault.status or 307, b"", {**fault.headers, "Location": fault.redirect_to + self.path})
            return
        if fault and fault.status is not None:
            payload = fault.body if fault.body is not None else json.dumps(
                {"Message": f"Injected fault {fault.status}"}).encode()
            self._send(fault.status, payload, fault.headers, truncate=fault.truncate)
            return
        status, data = sim.handle(method, parts.path, query, body, token)
        payload = json.dumps(data).encode("utf-8")
        self._send(status, payload, fault.headers if fault else {}, truncate=bool(fault and fault.truncate))

    def _send(self, status: int, payload: bytes, headers: Dict[str, str], truncate: bool = False) -> None:
        self.send_response(status)
        is_json = payload[:1] in (b"{", b"[")
        self.send_header("Content-Type", "application/json; charset=utf-8" if is_json else "text/html")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload[:max(1, len(payload) // 2)] if truncate else payload)
        if truncate:
            self.close_connection = True


def connection_settings(sim: AtHocSimulator) -> Dict[str, str]:
    """The settings that point bobosync at this simulator (address, credentials, organisation)."""
    return {"ATHOC_SERVER_URL": sim.url, "CLIENT_ID": sim.client_id, "CLIENT_SECRET": sim.client_secret,
            "APIUSER": sim.username, "PASSWORD": sim.password, "ORG_CODE": sim.org}


def env_lines(sim: AtHocSimulator) -> Iterable[str]:
    """The .env lines that point bobosync at this simulator."""
    yield from (f"{name}={value}" for name, value in connection_settings(sim).items())
    if sim.scheme == "https":
        yield "# the simulator's certificate is self-made: trust it with SSL_CERT_PATH=<its CA file>"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve an AtHoc stand-in on this machine, for rehearsals without an AtHoc test instance.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080; 0 picks a free one)")
    parser.add_argument("--users", type=int, default=500, help="users to create, with collar numbers 10001 upwards")
    parser.add_argument("--org", default="DEMO", help="organisation code (default: DEMO)")
    parser.add_argument("--collar-field", default="Collar-Number", help="field holding the collar number")
    parser.add_argument("--cert", help="PEM certificate (with --key) to serve HTTPS instead of HTTP")
    parser.add_argument("--key", help="PEM private key of --cert")
    args = parser.parse_args(argv)
    try:
        sim = AtHocSimulator(org=args.org, host=args.host, port=args.port, certfile=args.cert, keyfile=args.key)
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc}. Pick another --port.")
        return 2
    sim.seed_users(args.users, collar_field=args.collar_field)
    print(f"AtHoc simulator serving {len(sim.users)} users of org {sim.org} at {sim.url}")
    print("Put these lines in bobosync/.env (Ctrl+C stops the simulator):\n")
    print("\n".join(env_lines(sim)))
    sim.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
