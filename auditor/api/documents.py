"""The API's documents moved to auditor/core/documents.py (the command line prints the same
ones); this name stays for code written against it."""

from auditor.core.documents import *  # noqa: F403
