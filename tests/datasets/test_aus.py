import pytest

from merkit.datasets import load
from merkit.datasets.aus import parse_aus


@pytest.mark.parametrize(
    "cell,aus",
    [
        ("L10", (10,)),
        ("R14", (14,)),
        ("A1B+2", (1, 2)),
        ("4+L10+R14", (4, 10, 14)),
        ("?", ()),
        ("", ()),
        (None, ()),
        (float("nan"), ()),
        ("AU1+AU2", (1, 2)),
        ("1B+2C+5", (1, 2, 5)),
        ("R12A+L14", (12, 14)),
        ("4(?)", (4,)),
        ("12+12", (12,)),
        (" 6 + 12 ", (6, 12)),
        ("R14A", (14,)),
        ("0", ()),
        (4, (4,)),
        ("unclear", ()),
    ],
)
def test_au_cells_of_every_notation(cell, aus):
    assert parse_aus(cell) == aus


def test_the_cross_dataset_set_is_mebs_twelve():
    """The ``aus`` scheme keeps exactly MEB's twelve AUs of a clip's codes, and drops every other."""
    from merkit.datasets.labels import NO_AU, get_scheme

    scheme = get_scheme("aus")
    kept = [a for a in range(1, 65) if scheme.label_of_aus(str(a)) != NO_AU]
    assert kept == [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17]
    assert scheme.classes == tuple(f"AU{a}" for a in kept)
    assert scheme.label_of_aus("L1+3+4B+11+R12+18+25+L14+17") == "AU1+AU4+AU12+AU14+AU17"
    assert scheme.label_of_aus("3+8+11+13+16+18+20+25+26+43") == NO_AU


@pytest.mark.parametrize("layout", ["casme2", "casme", "samm", "casme3", "mmew"])
def test_each_reader_reads_back_the_action_units_the_generator_moved(layouts, layout):
    written = layouts[layout]
    data = load(layout, root=written.root, labels="original")
    truth = {(t.subject, t.clip): "+".join(map(str, sorted(t.expression.aus))) for t in written.clips}
    read = {(s, c): a for s, c, a in data.metadata[["subject", "clip", "aus"]].itertuples(index=False)}
    assert read == truth
    if layout == "samm":  # written with SAMM's intensity letters, read back as numbers
        assert any(ch.isalpha() for ch in data.metadata["action_units"].iloc[0])
