"""Names on disk."""

from __future__ import annotations


def safe_name(key: str) -> str:
    """A key such as ``casme2/sub01`` (a fold, a video) as one file name: ``casme2__sub01``.

    Examples
    --------
    >>> safe_name("casme2_long/s15/15_0101")
    'casme2_long__s15__15_0101'
    """
    return key.replace("/", "__")
