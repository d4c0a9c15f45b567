"""Secrets in the credential store (issue 15): the keyring rule, --store-secret, --check's view of them,
one site's secrets apart from another's, and no secret in any output, log or file.

Every test stores and reads real secrets through keyring, with keyrings.alt's plain-text file backend
whose file is in the test's own folder (PYTHON_KEYRING_BACKEND, XDG_DATA_HOME; LOCALAPPDATA on
Windows): the machine's own credential store is never touched."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENTRY, ROOT
from testsite import Site, on

keyring = pytest.importorskip("keyring")
pytest.importorskip("keyrings.alt")

FILE_BACKEND = "keyrings.alt.file.PlaintextKeyring"
NO_BACKEND = "keyring.backends.fail.Keyring"
ODD_SECRET = "a$b ${HOME} #c \"q\" 'r' $(x) %20 \\n end"  # $, #, quotes, spaces, an escape-looking \\n


def store_env(folder: Path, backend: str = FILE_BACKEND) -> dict:
    """The variables that point keyring at a file backend inside `folder`."""
    return {"PYTHON_KEYRING_BACKEND": backend, "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"), "LOCALAPPDATA": str(folder / "data")}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A keyring file backend in tmp_path, for this process and the runs it starts."""
    for name, value in store_env(tmp_path / "keyring").items():
        monkeypatch.setenv(name, value)
    import keyring.core
    keyring.core.init_backend()
    yield tmp_path / "keyring"
    keyring.core.init_backend()


def store_secret(site: Site, name: str, value: str, *extra: str, expect: int = 0) -> str:
    """`--store-secret NAME` as a script would run it: the value on standard input (not a terminal)."""
    result = subprocess.run([sys.executable, ENTRY, "--store-secret", name, *extra], cwd=str(ROOT),
                            env=site.full_env(), input=value + "\n", capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == expect, output
    assert "Traceback" not in output, output
    return output


def files_hold(folder: Path, secret: str, skip: Path) -> list:
    """Every file under `folder` (but the keyring file backend's) whose bytes hold `secret`."""
    return [p for p in folder.rglob("*") if p.is_file() and skip not in p.parents
            and secret.encode("utf-8") in p.read_bytes()]


def test_from_store_secret_to_a_successful_run_with_no_secret_in_any_file(sim, tmp_path, store):
    """Done when: a site runs with no secret in any file. Rule: a secret setting whose value is keyring is read
    from the store; --store-secret stores it from standard input and confirms by name only."""
    sim.password = ODD_SECRET
    site = Site(sim, tmp_path / "site", CLIENT_SECRET="keyring", PASSWORD="keyring")
    for name, value in (("CLIENT_SECRET", sim.client_secret), ("PASSWORD", sim.password)):
        output = store_secret(site, name, value)
        assert f"{name} stored in the credential store" in output and value not in output
    ev = on("10001", "20240601070000")
    site.write("a.csv", [ev])
    output = site.run_scheduled()
    assert site.held(site.logins[0]) == ev.value
    for secret in (sim.password, sim.client_secret):
        assert secret not in output
        assert not files_hold(tmp_path, secret, store), secret
    assert list(store.rglob("*.cfg")), "the secrets are in the test's keyring file"


def test_secret_full_of_dollars_hashes_quotes_and_spaces_is_read_as_written(tmp_path):
    """Rule: .env is read without interpolation: ab${HOME}cd stays ab${HOME}cd, and a double-quoted secret with
    $, #, quotes and spaces arrives whole."""
    from config import load_settings
    env_file = tmp_path / ".env"
    env_file.write_text("ATHOC_SERVER_URL=https://athoc.example\nCLIENT_ID=c\nAPIUSER=u\nORG_CODE=O\n"
                        "CLIENT_SECRET=ab${HOME}cd\n"
                        "PASSWORD=\"p a$s #w\\\"o'rd ${USER} $(id)\"\n", encoding="utf-8")
    env_file.chmod(0o600)
    settings = load_settings(str(env_file), environ={"HOME": "/home/x", "USER": "u"})
    assert settings.client_secret == "ab${HOME}cd"
    assert settings.password == "p a$s #w\"o'rd ${USER} $(id)"


def test_missing_secret_in_the_store_is_exit_2_naming_the_setting_and_the_fix(sim, tmp_path, store):
    """Rule: a setting written as keyring with nothing stored is a configuration error (exit 2) naming the
    setting and --store-secret NAME, for a run and for --check (a FAIL line), never a traceback."""
    site = Site(sim, tmp_path / "site", PASSWORD="keyring")
    site.write("a.csv", [on("10001", "20240601070000")])
    for argv in ((), ("--check",)):
        output = site.run_scheduled(*argv, expect=(2,))
        assert "PASSWORD=keyring" in output and "--store-secret PASSWORD" in output, output
        assert sim.client_secret not in output
    assert "FAIL  settings" in output
    assert not sim.requests_to("SyncByCommonNames")


def test_no_credential_store_backend_is_exit_2_with_the_fix(sim, tmp_path, store):
    """Rule: no keyring backend is a configuration error (exit 2) saying what to install, for a run, --check and
    --store-secret."""
    site = Site(sim, tmp_path / "site", CLIENT_SECRET="keyring", **store_env(tmp_path, NO_BACKEND))
    site.write("a.csv", [on("10001", "20240601070000")])
    for argv in ((), ("--check",)):
        output = site.run_scheduled(*argv, expect=(2,))
        assert "CLIENT_SECRET" in output and "no credential store" in output, output
    output = store_secret(site, "CLIENT_SECRET", "abc-secret-1", expect=2)
    assert "no credential store" in output and "abc-secret-1" not in output


def test_check_says_where_each_secret_comes_from_never_its_value(sim, tmp_path, store):
    """Rule: --check names the source of each secret (the store: PASS; plain text: WARN recommending the store),
    never a value; plain-text secrets still work."""
    site = Site(sim, tmp_path / "site", CLIENT_SECRET="keyring")
    env_file = tmp_path / "site" / ".env"
    env_file.write_text("HTTPS_PROXY=http://me:plain-proxy-pw@127.0.0.1:9\n", encoding="utf-8")
    site.env.pop("PASSWORD")
    env_file.write_text(env_file.read_text() + f"PASSWORD={sim.password}\n", encoding="utf-8")
    env_file.chmod(0o600)
    store_secret(site, "CLIENT_SECRET", sim.client_secret, "--env-file", str(env_file))
    output = site.run_scheduled("--check", "--env-file", str(env_file), expect=(0, 1))
    assert re.search(r"^PASS\s+CLIENT_SECRET\s+read from the credential store \(bobosync:DEMO@127\.0\.0\.1:\d+\)",
                     output, flags=re.M), output
    assert re.search(r"^WARN\s+PASSWORD\s+PASSWORD is in plain text in .*\.env: keep it in the credential "
                     r"store instead: .*--store-secret PASSWORD, then set PASSWORD=keyring", output, flags=re.M), output
    assert re.search(r"^WARN\s+HTTPS_PROXY\s+the proxy's password is in plain text", output, flags=re.M), output
    assert re.search(r"^PASS\s+CLIENT_ID|^PASS\s+settings", output, flags=re.M)
    for secret in (sim.client_secret, sim.password, "plain-proxy-pw"):
        assert secret not in output
    assert "PASS  token" in output  # the stored client secret and the plain password both work


def test_sites_on_one_server_keep_their_own_secrets(tmp_path, store):
    """Rule: the service name is bobosync:<ORG_CODE>@<host[:port]>, so two sites (another org, another server)
    never overwrite each other's secrets; the user name is the setting's name."""
    from config import load_settings
    from credential_store import service_name
    from secret_command import store_command
    sites = {("ORG1", "https://athoc.example"): "pw-one", ("ORG2", "https://athoc.example"): "pw-two",
             ("ORG1", "https://athoc.example:8443"): "pw-three"}
    for (org, url), secret in sites.items():
        env = {"ATHOC_SERVER_URL": url, "ORG_CODE": org, "CLIENT_ID": "c", "APIUSER": "u",
               "CLIENT_SECRET": "cs", "PASSWORD": "keyring"}
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            assert store_command("password", env_file=None, stdin=_Lines(secret)) == 0
    for (org, url), secret in sites.items():
        env = {"ATHOC_SERVER_URL": url, "ORG_CODE": org, "CLIENT_ID": "c", "APIUSER": "u",
               "CLIENT_SECRET": "cs", "PASSWORD": "keyring"}
        settings = load_settings(environ=env)
        assert settings.password == "keyring" and secret not in settings.secrets  # read when first needed
        settings.read_stored_secrets()
        assert settings.password == secret
        assert secret in settings.secrets  # so the log filter hides it
        assert keyring.get_password(service_name(org, url), "PASSWORD") == secret
    assert service_name("ORG1", "https://Athoc.Example:8443/") == "bobosync:ORG1@athoc.example:8443"


class _Lines:
    """Standard input that is not a terminal: one line."""

    def __init__(self, text: str):
        self.text = text

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        return self.text + "\n"


def test_store_secret_delete_removes_it_and_the_next_run_says_so(sim, tmp_path, store):
    """Rule: --store-secret NAME --delete removes this site's NAME (and says when there was none); a run then
    stops with exit 2 naming the fix."""
    site = Site(sim, tmp_path / "site", PASSWORD="keyring")
    store_secret(site, "PASSWORD", sim.password)
    site.run_scheduled()
    assert "PASSWORD removed from the credential store" in store_secret(site, "PASSWORD", "", "--delete")
    assert "PASSWORD was not in the credential store" in store_secret(site, "PASSWORD", "", "--delete")
    site.write("a.csv", [on("10001", "20240601070000")])
    assert "--store-secret PASSWORD" in site.run_scheduled(expect=(2,))
    assert site.csv_left() == {"a.csv"} and not site.sync_requests()


@pytest.mark.parametrize("argv, value, named", [
    (("--store-secret", "APIUSER"), "x", "APIUSER is not a secret setting"),
    (("--store-secret", "PASSWORD"), "", "nothing was typed"),
    (("--delete",), "", "--delete goes with --store-secret"),
], ids=["not-a-secret", "empty", "delete-alone"])
def test_store_secret_refuses_bad_input_with_a_message(sim, tmp_path, store, argv, value, named):
    """Rule: bad input to --store-secret is a clear message and exit 2, never a traceback, nothing stored."""
    site = Site(sim, tmp_path / "site")
    result = subprocess.run([sys.executable, ENTRY, *argv], cwd=str(ROOT), env=site.full_env(), input=value + "\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and named in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(store.rglob("*.cfg"))


def test_proxy_password_written_as_keyring_comes_from_the_store_percent_encoded(tmp_path, store):
    """Rule: a proxy URL whose password is the word keyring gets the stored password, as typed (it is
    percent-encoded into the URL here), and the password joins the secrets; repr masks it."""
    from config import load_settings
    from secret_command import store_command
    env = {"ATHOC_SERVER_URL": "https://athoc.example", "ORG_CODE": "ORG", "CLIENT_ID": "c", "APIUSER": "u",
           "CLIENT_SECRET": "cs", "PASSWORD": "pw", "HTTPS_PROXY": "http://proxyuser:keyring@proxy.example:8080"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert store_command("HTTPS_PROXY", stdin=_Lines("p@ss/w rd#1")) == 0
    settings = load_settings(environ=env)
    settings.read_stored_secrets()
    assert settings.https_proxy == "http://proxyuser:p%40ss%2Fw%20rd%231@proxy.example:8080"
    assert "p@ss/w rd#1" in settings.secrets and "p%40ss%2Fw%20rd%231" in settings.secrets
    assert "p@ss" not in repr(settings) and "p%40ss" not in repr(settings)
    assert settings.secret_sources["HTTPS_PROXY"].startswith("the credential store")


def test_a_run_with_nothing_to_do_does_not_import_keyring(sim, tmp_path, store):
    """Rule: keyring is imported only when a secret is needed: a run with nothing to do does not pay for it,
    whether the secrets are plain or in the store; a run that talks to AtHoc reads them."""
    site = Site(sim, tmp_path / "site", SYNC_MAPPINGS="false", AUTO_CLEANUP_HOURS="0")
    imported = _imports(site)
    assert "keyring" not in imported and "credential_store" not in imported
    store_secret(site, "PASSWORD", sim.password)
    store_secret(site, "CLIENT_SECRET", sim.client_secret)
    site.configure(PASSWORD="keyring", CLIENT_SECRET="keyring")
    assert not {"keyring", "credential_store"} & _imports(site)
    ev = on("10001", "20240601070000")
    site.write("a.csv", [ev])
    site.configure(SYNC_MAPPINGS="true")
    assert "keyring" in _imports(site, "1 updated")
    assert site.held(site.logins[0]) == ev.value


def _imports(site: Site, said: str = "Nothing to do") -> set:
    result = subprocess.run([sys.executable, "-X", "importtime", ENTRY], cwd=str(ROOT), env=site.full_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and said in result.stdout, result.stdout + result.stderr[-2000:]
    return set(re.findall(r"\|\s*([\w.]+)$", result.stderr, flags=re.M))


@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal")
def test_store_secret_on_a_terminal_prompts_without_echo(sim, tmp_path, store):
    """Rule: on a terminal --store-secret prompts with getpass: what is typed is not echoed back."""
    import pty
    site = Site(sim, tmp_path / "site")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real entry point on the terminal
        os.chdir(str(ROOT))
        os.execve(sys.executable, [sys.executable, ENTRY, "--store-secret", "PASSWORD"], site.full_env())
    seen = _read_until(fd, b"(not shown): ")
    os.write(fd, b"typed-secret-42\n")
    seen += _read_until(fd, b"\n", b"now set PASSWORD=keyring")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(status) == 0, seen
    assert b"typed-secret-42" not in seen and b"PASSWORD stored" in seen, seen
    assert keyring.get_password("bobosync:DEMO@" + sim.url.split("://")[1], "PASSWORD") == "typed-secret-42"


def _read_until(fd: int, *marks: bytes) -> bytes:
    data = b""
    while not all(m in data for m in marks):
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_a_secret_read_from_the_store_later_is_hidden_by_the_log_filter(tmp_path, store):
    """Rule: a secret read from the store joins Settings.secrets, and the log filter set up before it was read
    hides it from then on (the run's log filter is made at start-up; the store is read when AtHoc is needed)."""
    import logging

    from config import load_settings
    from log_setup import SecretFilter
    from secret_command import store_command
    env = {"ATHOC_SERVER_URL": "https://athoc.example", "ORG_CODE": "ORG", "CLIENT_ID": "c", "APIUSER": "u",
           "CLIENT_SECRET": "keyring", "PASSWORD": "pw-plain"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert store_command("CLIENT_SECRET", stdin=_Lines("st0red-cl1ent")) == 0
    settings = load_settings(environ=env)
    log_filter = SecretFilter(settings.secrets, settings)
    settings.read_stored_secrets()
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "form client_secret=%s password=%s",
                               ("st0red-cl1ent", "pw-plain"), None)
    log_filter.filter(record)
    assert record.getMessage() == "form client_secret=*** password=***"
