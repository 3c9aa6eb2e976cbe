"""Facial action units (FACS) as the annotation spreadsheets write them, reduced to AU numbers.

Each dataset has its own notation: CASME II ``4+L10`` (laterality L/R before the number), SAMM
``R14A`` or ``A1B+2`` (intensity A-E after the number, sometimes a letter before it), CASME and
CAS(ME)³ ``1+2``, some releases ``AU1+AU2``, ``4(?)`` for an uncertain code, ``?`` or an empty
cell for none. merkit keeps the AU numbers and drops laterality, intensity and uncertainty marks:
``parse_aus('4+L10+R14') == (4, 10, 14)``. The cross-dataset set ``AU_SET`` is the 12 AUs the
open toolkit meb detects across datasets.
"""

from __future__ import annotations

import re

AU_SET = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17)
_NUMBER = re.compile(r"\d+")


def parse_aus(text) -> tuple[int, ...]:
    """The AU numbers of one spreadsheet cell, sorted and unique; () when it codes none.

    Examples
    --------
    >>> parse_aus("4+L10"), parse_aus("A1B+2"), parse_aus("R14"), parse_aus("?"), parse_aus("")
    ((4, 10), (1, 2), (14,), (), ())
    """
    if text is None or (isinstance(text, float) and text != text):  # empty cell (NaN)
        return ()
    numbers = set()
    for token in re.split(r"[+,;/\s]+", str(text)):
        match = _NUMBER.search(token.upper().replace("AU", ""))
        if match and int(match.group()) > 0:
            numbers.add(int(match.group()))
    return tuple(sorted(numbers))
