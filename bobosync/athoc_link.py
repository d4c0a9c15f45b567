"""One run's connection to AtHoc: the client made on first use, and whether AtHoc has failed this run.

After a call-level failure (AtHoc unreachable, refusing, answering nonsense) the run makes no
further AtHoc call: what is unfinished waits for the next run. When the token endpoint refuses
the credentials, later runs do not ask again until a back-off expires or the credentials in the
settings change, so a wrong password cannot lock the service account.
"""
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Callable, List, Mapping, Optional

from athoc_types import AtHocError, CredentialsRefusedError, SyncOutcome
from backoff import Backoff
from bobo_db import BOBODatabase
from config import Settings
from wall_clock import now as wall_clock_now

if TYPE_CHECKING:
    from athoc_client import AtHocClient

log = logging.getLogger("bobosync")

CREDENTIALS = "credentials_refused"


class CredentialsBackoffError(AtHocError):
    """AtHoc refused these credentials earlier, and the back-off has not expired: not asked again."""


def credentials_fingerprint(settings: Settings, db: BOBODatabase) -> str:
    """A salted, slow hash of the credential settings: tells that they changed, without keeping them."""
    import hashlib
    import os
    settings.read_stored_secrets()  # the credentials themselves, not the word keyring
    salt = db.get_state("credentials_salt")
    if salt is None:
        salt = os.urandom(16).hex()
        db.set_state("credentials_salt", salt)
    text = "\n".join((settings.athoc_server_url, settings.org_code, settings.client_id, settings.client_secret,
                      settings.api_user, settings.password))
    return hashlib.pbkdf2_hmac("sha256", text.encode("utf-8", "surrogatepass"), bytes.fromhex(salt), 50_000).hex()


class AtHocLink:
    """The AtHoc client of one run (requests is imported only when AtHoc is needed)."""

    def __init__(self, settings: Settings, db: BOBODatabase, clock: Callable[[], datetime] = wall_clock_now):
        self.settings, self.db, self.clock = settings, db, clock
        self.down = ""  # why AtHoc calls stopped for this run ('' while none failed)
        self.failure: Optional[Exception] = None  # the first call-level failure of this run (alerts.py reads it)
        self.person_must_act: List[str] = []  # why this run ends with exit 3
        self.ask_despite_backoff = False  # --sync-mappings: a person asked, so try once
        self.deadline: Optional[float] = None  # time.monotonic() by which every AtHoc call must be over
        self._client: Optional[AtHocClient] = None
        self._credentials = Backoff(db, CREDENTIALS)

    @property
    def client(self) -> "AtHocClient":
        """The client, authenticated on first use."""
        if self._client is None:
            self._refuse_while_backing_off()
            from athoc_client import AtHocClient
            try:
                self._client = AtHocClient(self.settings, deadline=self.deadline)
            except CredentialsRefusedError:
                self._credentials_refused()
                raise
            self._credentials.succeeded()
        return self._client

    def backing_off(self) -> bool:
        """At the start of a run: True, with the reason logged, while refused credentials are not asked again."""
        try:
            self._refuse_while_backing_off()
        except CredentialsBackoffError as exc:
            self.failed("AtHoc is not asked this run", exc)
            return True
        return False

    def _refuse_while_backing_off(self) -> None:
        if self.ask_despite_backoff or self._credentials.next_try() is None:
            return
        if self._credentials.waiting(self.clock(), credentials_fingerprint(self.settings, self.db)):
            until = self._credentials.next_try()
            raise CredentialsBackoffError(
                f"AtHoc refused the credentials {self._credentials.failures} time(s); to keep the service account "
                f"from being locked, bobosync asks again at {until:%Y-%m-%d %H:%M:%S} or as soon as APIUSER, PASSWORD, "
                f"CLIENT_ID or CLIENT_SECRET change. Fix them, then run --check")

    def _credentials_refused(self) -> None:
        until = self._credentials.failed(self.clock(), credentials_fingerprint(self.settings, self.db))
        log.error("AtHoc refused the credentials: bobosync asks again at %s, or as soon as they change in the "
                  "settings (--check and --sync-mappings try at once)", f"{until:%Y-%m-%d %H:%M:%S}")

    def unknown_field(self, outcomes: "Mapping[str, SyncOutcome]") -> bool:
        """True, and AtHoc calls stop with exit 3, when AtHoc said the duty field does not exist: every event
        is kept (nothing is recorded) until a person fixes DUTY_STATUS_FIELD or AtHoc's attributes."""
        details = next((o.details for o in outcomes.values() if o.status == "unknown_field"), None)
        if details is None:
            return False
        self.down = f"AtHoc does not know the field {self.settings.duty_status_field}"
        self.failure = self.failure or AtHocError(f"{self.down}: {details}")
        self.person_must_act.append(f"AtHoc does not know DUTY_STATUS_FIELD={self.settings.duty_status_field}")
        log.error("AtHoc refused the duty field: %s. Nothing is recorded and every event waits: check "
                  "DUTY_STATUS_FIELD against AtHoc's user attributes (--check), then the next run sends them",
                  details)
        return True

    def failed(self, what: str, exc: Exception) -> None:
        """Log a call-level AtHoc failure and stop further AtHoc calls in this run."""
        self.down = str(exc)
        self.failure = self.failure or exc
        if str(exc).startswith("authentication:"):  # the seed's wording, which monitoring may watch for
            log.error("Failed to get AtHoc authentication token. %s: %s", what, exc)
        else:
            log.error("%s: %s", what, exc)
        if isinstance(exc, CredentialsRefusedError) and self._client is not None:
            self._credentials_refused()  # refused at a token renewal, after the run had started
        if isinstance(exc, (CredentialsRefusedError, CredentialsBackoffError)):
            self.person_must_act.append("AtHoc refused the credentials")

    @property
    def answered(self) -> bool:
        """Whether AtHoc issued this run a token (it was reached and took the credentials)."""
        return self._client is not None

    def clock_offset(self) -> Optional[float]:
        """AtHoc's clock minus this computer's, in seconds, from this run's replies (None before any)."""
        return self._client.clock_offset_seconds if self._client is not None else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
