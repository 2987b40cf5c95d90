"""How a URL with secrets in it is shown in logs and errors (invariant 12): never its
password, never a query parameter that holds one."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["SECRET_QUERY", "mask_url"]


SECRET_QUERY = re.compile(r"pass|secret|token", re.IGNORECASE)
"""Query parameters of a URL that hold a secret: redis-py turns every query parameter into a
connection option, so ``?password=`` (or ``ssl_password=``) is as good as the userinfo's."""


def mask_url(url: str) -> str:
    """``url`` with every secret in it replaced by ``***``: the userinfo's password and any
    query parameter named like a secret (:data:`SECRET_QUERY`).

    Written on the URL's parts, not its text: a cluster URL lists several hosts, a password
    may contain ``@`` or ``:``, and a URL that doesn't parse still never shows its secrets.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url, not shown>"
    netloc = parts.netloc
    creds, at, hosts = netloc.rpartition("@")
    if at:
        # a lone name is a username to redis-py but a password to other clients: hidden too
        user, colon, _password = creds.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"***@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*")
    # not urlunsplit: it drops the empty authority of unix:///path
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
