"""The transition id's text is the UUID form of its digest (consumers dedupe on it: a
change of its spelling would make every replayed transition look new)."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from segments.ids import transition_id


@given(st.text(), st.text(), st.text(), st.text(), st.integers(-(2**62), 2**62))
def test_the_id_is_the_uuid_of_the_blake2b_digest(
    cid: str, scheme: str, frm: str, to: str, ms: int
) -> None:
    text = f"{cid}\x1f{scheme}\x1f{frm}\x1f{to}\x1f{ms}"
    digest = hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=16).digest()
    try:
        got = transition_id(cid, scheme, frm, to, ms)
    except UnicodeEncodeError:  # a lone surrogate: neither spelling encodes it
        return
    assert got == str(uuid.UUID(bytes=digest))


def test_a_known_id_is_unchanged() -> None:
    assert transition_id("c1", "rfm8", "new", "high_value", 1_700_000_000_000) == str(
        uuid.UUID(
            bytes=hashlib.blake2b(
                b"c1\x1frfm8\x1fnew\x1fhigh_value\x1f1700000000000", digest_size=16
            ).digest()
        )
    )
