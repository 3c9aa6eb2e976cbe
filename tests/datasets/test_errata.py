"""Errata of real releases: every reader skips the spoilt rows, names each, and refuses them when strict."""

import warnings

import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import load
from merkit.errors import ConfigError, DatasetError, DatasetWarning
from merkit.synthetic import LAYOUTS, SynthConfig, write_dataset
from merkit.synthetic.errata import ERRATA

REASONS = {  # what the reader says of each kind of erratum
    "offset_zero": "comes before {onset}",
    "offset_before_onset": "comes before {onset}",
    "apex_outside": "lies outside",
    "duplicate": "repeats row {previous}",
    "missing_folder": "no frame folder",
    "empty_folder": "holds no frames",
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def spoilt(request, tmp_path_factory):
    layout = request.param
    _, fps, emotions, _ = LAYOUTS[layout]
    config = SynthConfig(
        n_subjects=4, clips_per_subject=(3, 3), duration=(0.1, 0.15), fps=fps, emotions=emotions, seed=2
    )
    return write_dataset(layout, tmp_path_factory.mktemp("errata") / layout, config, errata=True)


def test_every_kind_of_erratum_is_written(spoilt):
    kinds = {e.kind for e in spoilt.errata}
    assert kinds == ({"empty_folder"} if spoilt.dataset.startswith("smic") else set(ERRATA) - {"empty_folder"})


def test_a_load_skips_each_spoilt_row_names_it_and_keeps_the_rest(spoilt):
    with pytest.warns(DatasetWarning) as caught:
        data = load(spoilt.dataset, root=spoilt.root, labels="original")
    assert len(caught) == 1, "one warning per load"
    message = str(caught[0].message)
    assert f"skipped {len(spoilt.errata)} annotation row(s)" in message and f"kept {len(spoilt.clips)} clips" in message
    kept = set(zip(data.metadata["subject"], data.metadata["clip"]))
    assert kept == {(t.subject, t.clip) for t in spoilt.clips}
    skipped = data.skipped
    assert len(skipped) == len(spoilt.errata)
    for erratum, line in zip(spoilt.errata, skipped.itertuples()):
        assert (line.row, line.subject) == (erratum.row, erratum.subject)
        assert erratum.file.endswith(line.file) or line.file.endswith(erratum.file)
        where = f"{line.file} row {line.row}" if line.row else line.file
        assert where in message and line.reason in message
        onset = {"casme": "OnsetF", "samm": "Onset Frame", "casme3": "Onset", "4dme": "Onset"}.get(
            spoilt.dataset, "OnsetFrame"
        )
        expected = REASONS[erratum.kind].format(onset=onset, previous=erratum.row - 1)
        assert expected in line.reason, (erratum.kind, line.reason)
        if erratum.kind == "offset_zero":
            assert "an offset of 0" in line.reason
    assert list(data.metadata.attrs["skipped"]) == data.problems and data.subset([0]).metadata.attrs[
        "skipped"
    ] == tuple(data.problems)


def test_strict_refuses_a_release_with_errata(spoilt):
    with pytest.raises(
        DatasetError, match=rf"{spoilt.dataset} at .* does not match its layout \({len(spoilt.errata)} problems"
    ) as error:
        load(spoilt.dataset, root=spoilt.root, labels="original", strict=True)
    assert len(error.value.problems) == len(spoilt.errata)
    with pytest.raises(DatasetError):
        load(spoilt.dataset, root=spoilt.root, labels="original", strict="true")


def test_datasets_check_lists_the_rows_a_load_skips_and_fails(spoilt):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # the check lists the rows itself; it does not warn
        result = CliRunner().invoke(
            app,
            [
                "datasets",
                "check",
                "--dataset",
                spoilt.dataset,
                "--root",
                str(spoilt.root),
                "--labels",
                "original",
                "--option",
                "strict=true",
            ],
        )
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    rows = [e for e in spoilt.errata if e.row]
    assert (
        f"A load skips {len(spoilt.errata)} annotation rows" in output and f"keeps {len(spoilt.clips)} clips" in output
    )
    for erratum in rows:
        assert f"row {erratum.row} ({erratum.subject}/" in output


def test_synth_errata_on_the_command_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["synth", "--out", str(tmp_path / "c3"), "--layout", "casme3", "--subjects", "2", "--jobs", "1", "--errata"],
    )
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("erratum ") for line in result.output.splitlines()) >= 5
    refused = runner.invoke(app, ["synth", "--out", str(tmp_path / "lv"), "--layout", "samm_lv", "--errata"])
    assert refused.exit_code == 2 and "--errata is for the clip layouts" in refused.output
    with pytest.raises(ConfigError, match="strict='maybe' must be a boolean"):
        load("casme3", root=tmp_path / "c3", strict="maybe")


def test_the_run_report_lists_the_skipped_rows(tmp_path):
    from merkit.evaluation import evaluate

    config = SynthConfig(
        n_subjects=4, clips_per_subject=(3, 3), duration=(0.1, 0.15), fps=90.0, emotions=LAYOUTS["mmew"][2], seed=3
    )
    written = write_dataset("mmew", tmp_path / "mmew", config, errata=True)
    with pytest.warns(DatasetWarning):
        data = load("mmew", root=written.root, labels="original")
    evaluate(data, "length_for_tests", out=tmp_path / "run", cache=tmp_path / "cache")
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"The reader skipped {len(written.errata)} annotation rows" in report
    for erratum in written.errata:
        assert f"| mmew | MMEW_Micro_Exp.xlsx | {erratum.row} | {erratum.subject} |" in report


def test_no_usable_clip_at_all_is_refused_without_strict(casme2_copy):
    import shutil

    for folder in (casme2_copy / "CASME2_RAW_selected").iterdir():
        shutil.rmtree(folder)
    with pytest.raises(
        DatasetError, match=r"casme2 at .* does not match its layout \(\d+ problems.*\n  - .*no frame folder"
    ):
        load("casme2", root=casme2_copy)
