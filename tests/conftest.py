"""Shared test set-up: bobosync/ on sys.path, as when users run it from that folder."""
import sys
from pathlib import Path

BOBOSYNC_DIR = Path(__file__).resolve().parent.parent / "bobosync"
if str(BOBOSYNC_DIR) not in sys.path:
    sys.path.insert(0, str(BOBOSYNC_DIR))
