"""One-character codes for the scheme and segment names a customer hash stores (codec v2).

Why: the names are the bulk of a transition history's text ("rfm27 needs_attention>
at_risk"); a code per name makes each one a single byte. The table is code, not rules,
so a state decodes the same whatever rules are loaded now.
"""

from __future__ import annotations

__all__ = ["CODE", "NAME", "NAMES"]

NAMES = (
    "none",
    # schemes of the default and management rules
    "rfm8",
    "rfm27",
    "rfm125",
    "pyramid",
    "churn_warning",
    "alive",
    "lifecycle",
    "loyalty",
    "value_matrix",
    "purchase_pattern",
    # rfm8
    "high_value",
    "develop",
    "dormant",
    "churning",
    "potential",
    "new",
    "maintain",
    "drifting",
    # rfm27
    "champions",
    "loyal",
    "recent",
    "needs_attention",
    "at_risk",
    "inactive",
    # rfm125
    "loyal_customers",
    "potential_loyalist",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "cant_lose_them",
    "hibernating",
    "lost",
    # pyramid
    "vip",
    "major",
    "ordinary",
    "small",
    # management rules
    "on_track",
    "active",
    "exploration",
    "formation",
    "stability",
    "decline",
    "true_friends",
    "butterflies",
    "barnacles",
    "strangers",
    "platinum",
    "gold",
    "iron",
    "lead",
    "premium",
    "big_ticket",
    "regular",
    "uncertain",
)
"""Scheme and segment names with a one-character code (their index in the alphabet).

Append only: a stored code must keep meaning the same name, whatever the rules say now
(a state written under older rules is still read, and compared, by its names). A name
not listed is stored spelled out, so custom rules cost bytes, never correctness."""

ALPHABET = (  # no space (separator), no marker ("'~[{"): a code is never mistaken for them
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&()*+,-./:;<=>?@]^_|}"
)
assert len(set(ALPHABET)) == len(ALPHABET) >= len(NAMES)
CODE: dict[str, str] = dict(zip(NAMES, ALPHABET, strict=False))
"""name -> code"""
NAME: dict[str, str] = {c: n for n, c in CODE.items()} | {"'": ""}
"""code -> name (and the quote alone, the empty name)"""
