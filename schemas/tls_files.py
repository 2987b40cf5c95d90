"""The one rule for a TLS file setting, Kafka's and Redis's alike: only with a TLS
connection, a readable file, and a key only beside its certificate. A file that isn't there
would fail every connect as if the server were down (retried for ever): said at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["check_tls_file"]


def check_tls_file(
    path: str | None,
    field: str,
    data: Mapping[str, Any],
    *,
    tls_used: bool,
    tls_needed: str,
    cert: tuple[str, str],
    key_field: str,
) -> str | None:
    """``path`` if it is a usable TLS file of ``field``, else ValueError with the reason.

    ``tls_used``: the connection it is for speaks TLS (``tls_needed`` says how to make it);
    ``cert``: (field, setting) of the certificate that a key in ``key_field`` belongs to.
    """
    if path is None or path == "":
        return None
    if not tls_used:
        raise ValueError(f"a TLS file needs {tls_needed}")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ValueError(f"no readable file {path!r}")
    if field == key_field and data.get(cert[0]) is None:
        raise ValueError(f"a client key needs its certificate, {cert[1]}")
    return path
