"""Settings rules of shared/settings.md: names, defaults, paths, validation, warnings."""
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import BOBOSYNC_DIR, ENVIRONMENT_NAMES, SETTINGS, ConfigError, Settings, load_settings, resolve_path
from log_setup import SecretFilter

ROOT = Path(__file__).resolve().parent.parent
SHARED_SETTINGS = ROOT.parent / "shared" / "settings.md"
REQUIRED = {"ATHOC_SERVER_URL": "https://athoc.example", "CLIENT_ID": "cid", "CLIENT_SECRET": "csecret",
            "APIUSER": "svc", "PASSWORD": "pw", "ORG_CODE": "ORG"}


def env_safe_values() -> dict:
    """Every NAME=value line of .env_safe, by name."""
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env_safe").read_text(encoding="utf-8"), flags=re.M))


def documented_defaults() -> dict:
    """The default column of shared/settings.md's tables, by setting name: None for 'required',
    '' for '—' ({} when the file is not beside the project)."""
    if not SHARED_SETTINGS.is_file():
        return {}
    defaults = {}
    rows = re.findall(r"^\| ([A-Z_, ]+) \| ([^|]+) \|", SHARED_SETTINGS.read_text(encoding="utf-8"), flags=re.M)
    for names, default in rows:
        default = default.strip()
        for name in names.split(","):
            defaults[name.strip()] = None if default == "required" else "" if default == "—" else default.strip("`")
    return defaults


def test_env_safe_documents_every_setting():
    """.env_safe sets every setting of config.SETTINGS, at its default (anything when required), and no other."""
    assigned = env_safe_values()
    assert set(assigned) == {s.name for s in SETTINGS}
    assert {s.name: assigned[s.name] for s in SETTINGS if not s.required} == \
        {s.name: s.default for s in SETTINGS if not s.required}


def test_defaults_match_settings_md():
    """config.SETTINGS has settings.md's settings and defaults (and the settings added since, each in
    .env_safe); an unset setting loads as its default."""
    documented = documented_defaults()
    table = {s.name: None if s.required else s.default for s in SETTINGS}
    if documented:
        assert {name: table.get(name, "(not in the table)") for name in documented} == documented
    loaded = load_settings(environ=REQUIRED)
    for s in SETTINGS:
        if not s.required:
            assert getattr(loaded, s.attr) == getattr(Settings, s.attr) == s.parse(s.default), s.name



def test_secrets_are_the_secret_settings_and_proxy_passwords():
    s = load_settings(environ={**REQUIRED, "HTTPS_PROXY": "http://me:pr0xy-pw@proxy:8080"})
    assert sorted(s.secrets) == sorted(["csecret", "pw", "pr0xy-pw"])
    shown = repr(s)
    assert "pr0xy-pw" not in shown and "https_proxy='http://me:***@proxy:8080'" in shown
    assert "csecret" not in shown and "client_secret='***'" in shown

def test_every_bad_or_missing_setting_is_named_in_one_message():
    bad = {"ATHOC_SERVER_URL": "athoc.example", "BATCH_SIZE": "ten", "SYNC_HOUR": "24",
           "MOVE_PROCESSED_FILES": "maybe", "LOG_LEVEL": "LOUD"}
    with pytest.raises(ConfigError) as err:
        load_settings(environ=bad)
    message = str(err.value)
    for name in ("ATHOC_SERVER_URL", "BATCH_SIZE", "SYNC_HOUR", "MOVE_PROCESSED_FILES", "LOG_LEVEL",
                 "CLIENT_ID", "CLIENT_SECRET", "APIUSER", "PASSWORD", "ORG_CODE"):
        assert name in message
    assert len(err.value.problems) == 10


def test_collar_id_field_is_always_read_by_the_mapping_sync():
    s = load_settings(environ={**REQUIRED, "USER_ATTRIBUTES": "FIRSTNAME", "COLLAR_ID_FIELD": "Badge"})
    assert s.mapping_fields == ["Badge", "FIRSTNAME"]


def test_relative_paths_resolve_against_the_bobosync_folder_and_unc_paths_are_kept():
    assert resolve_path("../crown_files") == BOBOSYNC_DIR.parent / "crown_files"
    assert resolve_path("data/x.db") == BOBOSYNC_DIR / "data" / "x.db"
    assert str(resolve_path(r"\\server\share\bobo")).startswith("\\\\server")
    assert str(resolve_path("//server/share/bobo")).replace("\\", "/").startswith("//server/share")


def test_process_environment_wins_over_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in REQUIRED.items()) + "\nBATCH_SIZE=3\n")
    env_file.chmod(0o600)
    s = load_settings(str(env_file), environ={"BATCH_SIZE": "7"})
    assert (s.batch_size, s.org_code, s.env_file) == (7, "ORG", env_file)


def test_missing_env_file_named_with_env_file_option(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(str(tmp_path / "nope.env"), environ={})


def test_env_file_with_a_byte_order_mark_keeps_its_first_setting(tmp_path):
    """Notepad's 'UTF-8 with BOM' and PowerShell 5.1's Set-Content -Encoding UTF8 start the file with a BOM."""
    env_file = tmp_path / ".env"
    lines = [f"{k}={v}" for k, v in {**REQUIRED, "PASSWORD": "p\u00a3ss"}.items()]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    env_file.chmod(0o600)
    s = load_settings(str(env_file), environ={})
    assert lines[0].startswith("ATHOC_SERVER_URL=") and s.athoc_server_url == REQUIRED["ATHOC_SERVER_URL"]
    assert s.password == "p\u00a3ss"


def test_env_file_not_in_utf8_is_a_configuration_error_naming_the_line(tmp_path):
    env_file = tmp_path / ".env"
    lines = [f"{k}={v}" for k, v in {**REQUIRED, "PASSWORD": "p\u00a3ss-s3cret"}.items()]
    env_file.write_bytes("\n".join(lines).encode("cp1252"))  # Notepad's old 'ANSI'
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("PASSWORD="))
    result = subprocess.run([sys.executable, str(BOBOSYNC_DIR / "bobo_processor.py"), "--env-file", str(env_file)],
                            env={k: v for k, v in os.environ.items() if k not in REQUIRED}, capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert f"{env_file} line {line} is not UTF-8 text: save the file as UTF-8" in output
    assert "s3cret" not in output


def test_apiuser_wins_and_username_is_only_a_warned_fallback():
    with_both = load_settings(environ={**REQUIRED, "USERNAME": "windows-login"})
    assert with_both.api_user == "svc" and not with_both.warnings
    fallback = dict(REQUIRED, USERNAME="svc2")
    del fallback["APIUSER"]
    s = load_settings(environ=fallback)
    assert s.api_user == "svc2"
    assert any("APIUSER" in w for w in s.warnings)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_world_readable_env_file_is_warned(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in REQUIRED.items()))
    env_file.chmod(0o644)
    assert any("chmod 600" in w for w in load_settings(str(env_file), environ={}).warnings)
    env_file.chmod(0o600)
    assert not load_settings(str(env_file), environ={}).warnings


def test_disable_ssl_verify_is_warned_and_missing_ca_bundle_is_an_error(tmp_path):
    s = load_settings(environ={**REQUIRED, "DISABLE_SSL_VERIFY": "true"})
    assert s.disable_ssl_verify and any("DISABLE_SSL_VERIFY" in w for w in s.warnings)
    with pytest.raises(ConfigError, match="SSL_CERT_PATH"):
        load_settings(environ={**REQUIRED, "SSL_CERT_PATH": str(tmp_path / "missing.pem")})


def test_lower_case_proxy_variables_are_honoured():
    s = load_settings(environ={**REQUIRED, "https_proxy": "http://proxy:8080", "no_proxy": "athoc.example"})
    assert (s.https_proxy, s.no_proxy) == ("http://proxy:8080", "athoc.example")


def test_secret_filter_removes_password_secret_and_bearer_tokens():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pw=%s secret=%s auth=%s", (
        "hunter2", "s3cret", "Bearer abc.DEF-123"), None)
    SecretFilter(["hunter2", "s3cret"]).filter(record)
    text = record.getMessage()
    assert "hunter2" not in text and "s3cret" not in text and "abc.DEF-123" not in text


def test_configuration_error_exits_2_with_a_message_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "USERNAME"}
    env["BATCH_SIZE"] = "0"
    result = subprocess.run([sys.executable, str(BOBOSYNC_DIR / "bobo_processor.py")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "BATCH_SIZE" in result.stderr and "ORG_CODE" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_settings_behave_as_the_dataclass_they_were():
    from config import Settings, settings_for_tests
    a, b = settings_for_tests(), settings_for_tests()
    assert a == b and a.user_attributes is not b.user_attributes and a.warnings is not b.warnings
    c = a.replace(batch_size=100)
    assert (c.batch_size, a.batch_size) == (100, 10) and c != a and c.client_id == a.client_id
    shown = repr(a.replace(password="pw-1234", client_secret="cs-5678"))
    assert "pw-1234" not in shown and "cs-5678" not in shown and "password='***'" in shown
    with pytest.raises(TypeError):
        Settings(athoc_server_url="https://x")  # the credentials are required
    with pytest.raises(TypeError):
        a.replace(no_such_setting=1)


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_a_run_with_nothing_to_do_does_not_import_dataclasses_or_argparse(tmp_path, where):
    """Rule: an idle run stays cheap: it imports none of what only some runs need. With its settings in a .env
    file, only python-dotenv's parser is loaded, not the package's dotenv.main (with tempfile, shutil, random);
    nor smtplib or the email package while alerts are on: they are imported only to send a message."""
    from config import ENV_DIRS_VAR
    settings = dict(REQUIRED, CSV_DIRECTORY=str(tmp_path / "in"), DB_PATH=str(tmp_path / "x.db"),
                    SYNC_MAPPINGS="false", AUTO_CLEANUP_HOURS="0", LOG_DIRECTORY=str(tmp_path / "logs"),
                    PROCESSED_DIRECTORY=str(tmp_path / "p"), FAILED_FILES_DIRECTORY=str(tmp_path / "f"),
                    SMTP_HOST="127.0.0.1", ALERT_FROM="b@force.example", ALERT_TO="a@force.example")
    env = {k: v for k, v in os.environ.items() if k not in settings}
    if where == ".env":
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
        env[ENV_DIRS_VAR] = str(tmp_path / "site")
    else:
        env.update(settings)
    (tmp_path / "in").mkdir()
    result = subprocess.run([sys.executable, "-X", "importtime", str(BOBOSYNC_DIR / "bobo_processor.py")], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    # (with the settings in the .env file alone, a run that did not read it would exit 2)
    assert result.returncode == 0 and "Nothing to do" in result.stdout, result.stdout + result.stderr
    imported = set(re.findall(r"\|\s*([\w.]+)$", result.stderr, flags=re.M))
    assert not imported & {"dataclasses", "argparse", "requests", "filelock", "logging.handlers", "bobo_csv",
                           "encodings.idna",  # the IDNA codec is for a non-ASCII host name only (url_secrets)
                           "dotenv", "dotenv.main", "smtplib", "email", "ssl"}


def test_a_env_file_is_read_by_python_dotenvs_own_parser_loaded_alone():
    """Rule: .env lines mean what python-dotenv makes of them; the parser run is python-dotenv's own module (loaded
    without the package's __init__, see the idle-run import rule), so both give the same bindings."""
    import io
    from dotenv import parser
    from env_file import _dotenv_parser
    alone = _dotenv_parser()
    assert alone is not parser and alone.__file__ == parser.__file__
    text = 'A=1\nexport B="two words"  # note\r\nC=\'x\\ny\'\n# c\nnot a line\nD=${HOME}\n'
    shown = [tuple(b) for b in alone.parse_stream(io.StringIO(text))]
    assert shown == [tuple(b) for b in parser.parse_stream(io.StringIO(text))] and len(shown) == 6


def test_the_types_mypy_sees_are_the_tables():
    """Settings spells out its attributes for mypy; they must be the table's, with the table's types."""
    import ast
    import typing
    tree = ast.parse((BOBOSYNC_DIR / "config.py").read_text(encoding="utf-8"))
    settings_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    block = next(n for n in settings_class.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    declared = {n.target.id: ast.unparse(n.annotation) for n in block.body if isinstance(n, ast.AnnAssign)}
    hints = typing.get_type_hints(Settings)
    from_table = {s.attr: hints[s.attr] for s in SETTINGS}
    assert list(declared) == list(from_table)
    namespace = {"Path": Path, "Optional": typing.Optional, "List": typing.List}
    assert {k: eval(v, namespace) for k, v in declared.items()} == from_table


@pytest.mark.parametrize("csv, processed, failed, named", [
    ("in", "in", "failed", ("CSV_DIRECTORY", "PROCESSED_DIRECTORY")),
    ("in", "done", "done", ("PROCESSED_DIRECTORY", "FAILED_FILES_DIRECTORY")),
    ("in", "in/done", "failed", ("PROCESSED_DIRECTORY", "CSV_DIRECTORY")),
    ("in/sub", "in/../in/sub", "failed", ("CSV_DIRECTORY", "PROCESSED_DIRECTORY")),
    ("link-to-in", "in", "failed", ("CSV_DIRECTORY", "PROCESSED_DIRECTORY")),
], ids=["csv=processed", "processed=failed", "processed-inside-csv", "same-after-dots", "same-through-a-link"])
def test_overlapping_folders_are_a_configuration_error_naming_both(tmp_path, csv, processed, failed, named):
    """Rule: any two of the CSV, processed and failed folders that are the same, or one inside another, are a
    configuration error naming both settings (after resolving relative paths and links)."""
    (tmp_path / "in" / "sub").mkdir(parents=True)
    if csv.startswith("link"):
        if os.name == "nt":
            pytest.skip("needs a symbolic link, which Windows allows only to administrators")
        (tmp_path / csv).symlink_to(tmp_path / "in", target_is_directory=True)
    env = {**REQUIRED, "CSV_DIRECTORY": str(tmp_path / csv), "PROCESSED_DIRECTORY": str(tmp_path / processed),
           "FAILED_FILES_DIRECTORY": str(tmp_path / failed)}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    problem = next(p for p in caught.value.problems if "folder" in p)
    assert named[0] in problem and named[1] in problem


def test_overlapping_folders_stop_a_run_a_check_and_a_dry_run_with_exit_2(tmp_path):
    """Runs, --check and --dry-run alike refuse overlapping folders, before touching any file."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("BON,10001,P1,20241001,070000,20241001070000,1,,,\n")
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_NAMES}
    env.update(REQUIRED, CSV_DIRECTORY=str(tmp_path / "in"), PROCESSED_DIRECTORY=str(tmp_path / "in"),
               LOG_DIRECTORY=str(tmp_path / "logs"), DB_PATH=str(tmp_path / "x.db"))
    for args in ([], ["--check"], ["--dry-run"]):
        result = subprocess.run([sys.executable, str(BOBOSYNC_DIR / "bobo_processor.py"), *args], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "PROCESSED_DIRECTORY" in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    assert os.listdir(tmp_path / "in") == ["a.csv"]
