"""bobosync's version: --version prints it; CHANGELOG.md says what changed in each (pyproject.toml's is the same,
a test checks)."""
VERSION = "0.2.0"
