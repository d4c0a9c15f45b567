"""One run's connection to AtHoc: the client made on first use, and whether AtHoc has failed this run.

After a call-level failure (AtHoc unreachable, refusing, answering nonsense) the run makes no
further AtHoc calls: what is unfinished waits for the next run.
"""
import logging
from typing import TYPE_CHECKING, Optional

from config import Settings

if TYPE_CHECKING:
    from athoc_client import AtHocClient

log = logging.getLogger("bobosync")


class AtHocLink:
    """The AtHoc client of one run (requests is imported only when AtHoc is needed)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.down = ""  # why AtHoc calls stopped for this run ('' while none failed)
        self._client: Optional[AtHocClient] = None

    @property
    def client(self) -> "AtHocClient":
        """The client, authenticated on first use."""
        if self._client is None:
            from athoc_client import AtHocClient
            self._client = AtHocClient(self.settings)
        return self._client

    def failed(self, what: str, exc: Exception) -> None:
        """Log a call-level AtHoc failure and stop further AtHoc calls in this run."""
        self.down = str(exc)
        log.error("%s: %s", what, exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
