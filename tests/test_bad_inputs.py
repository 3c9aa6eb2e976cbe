"""The bad-input catalogue: every command, every way a user gets it wrong.

Each case runs the real command and asserts exit status 2, no traceback, and the culprit (a
path, a flag, a value) named in the message. Each guard was removed once while writing its case,
to see the case fail without it.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def world(small_casme2, cache_dir, tmp_path_factory):
    """Paths a user might pass: a dataset, a finished run, a model, files of every wrong kind."""
    base = tmp_path_factory.mktemp("bad")
    root = str(small_casme2.root)
    run = base / "run"
    ok = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "casme2",
            "--root",
            root,
            "--labels",
            "seed4",
            "--method",
            "lbptop_svm",
            "--out",
            str(run),
            "--cache",
            str(cache_dir),
        ],
    )
    assert ok.exit_code == 0, ok.output
    damaged = shutil.copytree(run, base / "damaged")
    (damaged / "config.json").write_text('{"merkit": "0.1.0", "dataset": ')
    (base / "a_file.txt").write_text("not a folder")
    (base / "empty.csv").write_text("")
    (base / "garbled.csv").write_text("subject,label,frames_dir\nsub01,happy,a,b,c,d\n")
    (base / "mine").mkdir()
    (base / "mine" / "thesis.tex").write_text("keep me")
    blank = base / "blank"
    blank.mkdir()
    from merkit.io.video import write_video

    write_video(base / "zero.mkv", np.zeros((0, 16, 16, 3), np.uint8), 30)
    broken = shutil.copytree(small_casme2.root, base / "broken")
    victim = sorted((broken / "CASME2_RAW_selected" / "sub02").iterdir())[0]
    frame = sorted(victim.iterdir())[3]
    frame.write_bytes(b"\x00not a jpeg")
    others = shutil.copytree(small_casme2.root, base / "others")
    from openpyxl import load_workbook

    sheet = others / "CASME2-coding-20140508.xlsx"
    book = load_workbook(sheet)
    for row in range(2, book.active.max_row + 1):
        book.active.cell(row, 9).value = "others"  # column I: Estimated Emotion
    book.save(sheet)
    model = base / "model"
    ok = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "casme2",
            "--root",
            root,
            "--labels",
            "seed4",
            "--method",
            "apex_flow_svm",
            "--apex",
            "middle",
            "--out",
            str(model),
            "--cache",
            str(cache_dir),
        ],
    )
    assert ok.exit_code == 0, ok.output
    clip = small_casme2.root / "CASME2_RAW_selected" / small_casme2.clips[0].subject / small_casme2.clips[0].clip
    return {
        "root": root,
        "run": str(run),
        "damaged": str(damaged),
        "base": base,
        "clip": str(clip),
        "model": str(model),
        "broken": str(broken),
        "frame": str(frame),
        "others": str(others),
        "cache": str(cache_dir),
    }


def check(args: list[str], culprit: str):
    result = runner.invoke(app, args)
    output = result.output.replace("\n", "")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert culprit in output, result.output


def case(world, template: str) -> list[str]:
    base = world["base"]
    values = {
        **world,
        "file": str(base / "a_file.txt"),
        "new": str(base / "new_out"),
        "mine": str(base / "mine"),
        "blank": str(base / "blank"),
        "zero": str(base / "zero.mkv"),
        "empty": str(base / "empty.csv"),
        "garbled": str(base / "garbled.csv"),
        "below_file": str(base / "a_file.txt" / "deeper" / "out.mp4"),
        "txt": str(base / "out.txt"),
    }
    return [part.format(**values) for part in template.split()]


EVALUATE = "evaluate --dataset casme2 --root {root} --labels seed4 --method lbptop_svm --cache {cache} "
EVALUATE_CASES = [
    (EVALUATE + "--out {file}", "is a file, not a run directory"),
    (EVALUATE + "--out {damaged}", "config.json is damaged"),
    (EVALUATE + "--out {new} --protocol kfold --folds 1", "--folds must be at least 2"),
    (EVALUATE + "--out {new} --protocol subject_kfold --folds 0", "--folds must be at least 2"),
    (EVALUATE + "--out {new} --jobs 0", "--jobs must be positive"),
    (EVALUATE + "--out {new} --seed ten", "Invalid value for '--seed'"),
    (EVALUATE + "--out {new} --set n_frames=many", "n_frames='many'"),
    (
        "evaluate --dataset casme2 --root {root} --method mer_rcnn --set jitter=ture --out {new}",
        "one of 0, 1, false, no, true, yes",
    ),
    (
        "evaluate --dataset casme2 --root {root} --method ststnet --set device=gpu --out {new}",
        "device='gpu' is not a device",
    ),
    ("evaluate --dataset casme2 --root {root} --method ststnet --set folds_at_once=-1 --out {new}", "folds_at_once=-1"),
    ("evaluate --dataset manifest --root {empty} --method lbptop_svm --out {new}", "empty.csv: it is empty"),
    (
        "evaluate --dataset manifest --root {garbled} --method lbptop_svm --out {new}",
        "garbled.csv: it is not valid CSV",
    ),
    (
        "evaluate --dataset casme2 --root {broken} --labels seed4 --method lbptop_svm --out {new} --cache {cache}",
        "Cannot read frame {frame}",
    ),
    (
        "evaluate --dataset casme2 --root {others} --labels megc3 --method lbptop_svm --out {new}",
        "keeps no clip of casme2",
    ),
]


@pytest.mark.parametrize("template,culprit", EVALUATE_CASES)
def test_evaluate(world, template, culprit):
    check(case(world, template), culprit.format(**world))


@pytest.mark.parametrize(
    "template,culprit",
    [
        ("explain --run {damaged} --clip x", "config.json is damaged"),
        ("explain --run {blank} --clip x", "is not a run directory"),
        ("explain --run {run} --clip nothing_like_it", "lbptop_svm has no attention to show"),
    ],
)
def test_explain(world, template, culprit):
    check(case(world, template), culprit)


TRAIN = "train --dataset casme2 --root {root} --method apex_flow_svm --apex middle --cache {cache} "


@pytest.mark.parametrize(
    "template,culprit",
    [
        (TRAIN + "--out {file}", "a_file.txt is a file"),
        (TRAIN + "--out {mine}", "holds files that are not a model bundle"),
        (TRAIN + "--out {model}", "already holds a model bundle; pass --overwrite"),
        (TRAIN + "--out {new} --evaluate kfold", "Unknown --evaluate 'kfold'"),
        (TRAIN + "--out {new} --evaluate loso --jobs 0", "--jobs must be positive"),
        (TRAIN + "--out {new} --set C=strong", "C='strong'"),
        (TRAIN + "--out {below_file} --evaluate loso", "Cannot create the folder {base}/a_file.txt/deeper"),
    ],
)
def test_train(world, template, culprit):
    check(case(world, template), culprit.format(**world))
    assert not list(world["base"].glob("**/*-loso")), "refused before the LOSO ran"


@pytest.mark.parametrize(
    "template,culprit",
    [
        ("predict --model {blank} {clip}", "is not a model bundle"),
        ("predict --model {model} {zero}", "Cannot read video {base}/zero.mkv"),
        ("predict --model {model} {blank}", "blank holds no frames"),
        ("predict --model {model} {clip} --out {txt}", "out.txt: name the output file with .csv"),
        ("predict --model {model} {clip} --onset 9 --offset 3", "comes after the offset"),
    ],
)
def test_predict(world, template, culprit):
    check(case(world, template), culprit.format(**world))


@pytest.mark.parametrize(
    "template,culprit",
    [
        ("magnify {clip} {txt} --fps 200", "out.txt: name the output file with .mp4 or .mkv"),
        ("magnify {clip} {below_file} --fps 200", "Cannot create the folder"),
        ("magnify {clip} {new}.mkv --fps 0", "--fps must be positive"),
        ("magnify {clip} {new}.mkv", "has no frame rate; pass --fps"),
        ("magnify {zero} {new}.mkv", "Cannot read video {base}/zero.mkv"),
        ("magnify {blank} {new}.mkv --fps 30", "blank holds no frames"),
    ],
)
def test_magnify(world, template, culprit):
    check(case(world, template), culprit.format(**world))


@pytest.mark.parametrize(
    "template,culprit",
    [
        ("synth --out {file}", "a_file.txt is a file"),
        ("synth --out {new} --subjects 0", "--subjects must be positive"),
        ("synth --out {new} --jobs 0", "--jobs must be positive"),
        ("synth --out {mine} --subjects 1", "mine holds files that merkit synth did not write"),
        ("synth --out {new} --layout casme4", "Unknown layout 'casme4'"),
        (
            "synth --out {new} --layout casme2_long --difficulty extreme",
            "Unknown difficulty 'extreme'; choose one of: 'easy', 'hard'",
        ),
        ("synth --out {new} --difficulty hard", "--difficulty is for the long-video layouts"),
    ],
)
def test_synth(world, template, culprit):
    check(case(world, template), culprit)
    assert (world["base"] / "mine" / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize(
    "template,culprit",
    [
        ("prepare --dataset casme2 --root {root} --method lbptop_svm --jobs 0", "--jobs must be positive"),
        (
            "prepare --dataset casme2 --root {file} --method lbptop_svm",
            "No frame folder CASME2_RAW_selected or Cropped under {base}/a_file.txt",
        ),
        ("datasets check --dataset casme2 --root {base}/nowhere", "nowhere does not exist"),
        ("list nothing", "Unknown list 'nothing'"),
        ("demo --jobs 0", "--jobs must be positive"),
        ("evaluate --dataset casme2 --root {root} --method lbptop_svm --out {new} --seeds 1,1", "distinct seeds"),
        (
            "evaluate --dataset casme2 --root {root} --method lbptop_svm --out {new} --seeds a,b",
            "--seeds takes whole numbers",
        ),
        (
            "evaluate --dataset casme2 --root {root} --method lbptop_svm --out {new} --address 127.0.0.2:1",
            "pass --executor ray",
        ),
        (
            "evaluate --dataset casme2 --root {root} --method lbptop_svm --out {new} --executor ray --address 127.0.0.2:1",
            "No Ray cluster answers at --address 127.0.0.2:1",
        ),
        (
            "evaluate --dataset casme2 --root {root} --method lbptop_svm --out {new} --executor ray --address headnode",
            "give the Ray head as HOST:PORT",
        ),
    ],
)
def test_other_commands(world, template, culprit):
    check(case(world, template), culprit.format(**world))


def _edit(folder, **fields):
    description = json.loads((folder / "bundle.json").read_text())
    description.update(fields)
    (folder / "bundle.json").write_text(json.dumps(description))


def _files(folder):
    return json.loads((folder / "bundle.json").read_text())["files"]


def _restate(folder, change):
    """The network state file rewritten by ``change(arrays, metadata)``, its checksum resealed."""
    import hashlib

    from merkit.io.state import read_arrays, write_arrays

    arrays, metadata = read_arrays(folder / "network.safetensors")
    change(arrays, metadata)
    write_arrays(folder / "network.safetensors", arrays, metadata)
    _edit(
        folder, files={"network.safetensors": hashlib.sha256((folder / "network.safetensors").read_bytes()).hexdigest()}
    )


def _link(folder, secret):
    (folder / "classifier.skops").unlink()
    (folder / "classifier.skops").symlink_to(secret)  # the same bytes: its checksum matches


# crafted bundles: (which bundle, how it is crafted (folder, the file outside it), what the message names)
CRAFTED = {
    "up_and_out": (
        "svm",
        lambda f, s: _edit(f, files={os.path.relpath(s, f): _files(f)["classifier.skops"]}),
        "files entry '../",
    ),
    "absolute": (
        "svm",
        lambda f, s: _edit(f, files={str(s): _files(f)["classifier.skops"]}),
        "is not a plain file name",
    ),
    "device": ("svm", lambda f, s: _edit(f, files={"/dev/zero": "0" * 64}), "files entry '/dev/zero'"),
    "empty_files": ("svm", lambda f, s: _edit(f, files={}), "field files does not list classifier.skops"),
    "extra_entry": (
        "svm",
        lambda f, s: _edit(f, files={**_files(f), "notes.txt": "0" * 64}),
        "files entry 'notes.txt' is not a state file",
    ),
    "not_a_digest": ("svm", lambda f, s: _edit(f, files={"classifier.skops": "md5:1234"}), "field files must be"),
    "link_outside": ("svm", _link, "is not a regular file of the bundle"),
    "version_text": ("svm", lambda f, s: _edit(f, format_version="one"), "field format_version must be a whole number"),
    "merkit_number": ("svm", lambda f, s: _edit(f, merkit=3), "field merkit must be"),
    "classes_text": ("svm", lambda f, s: _edit(f, classes="positive"), "field classes must be a list"),
    "method_unknown": (
        "svm",
        lambda f, s: _edit(f, method={"name": "os.system", "params": {}}),
        "field method.name: Unknown method 'os.system'",
    ),
    "params_wrong": (
        "svm",
        lambda f, s: _edit(f, method={"name": "apex_flow_svm", "params": {"C": "strong"}}),
        "field method.params",
    ),
    "params_unknown": (
        "svm",
        lambda f, s: _edit(f, method={"name": "apex_flow_svm", "params": {"__class__": 1}}),
        "has no parameter __class__",
    ),
    "replaces_model": (
        "net",
        lambda f, s: _restate(f, lambda a, m: a.update({"fitted.model_": np.zeros(3, np.float32)})),
        "unexpected fitted.model_",
    ),
    "replaces_classes": (
        "net",
        lambda f, s: _restate(f, lambda a, m: a.update({"fitted.classes_": np.zeros(2, np.float32)})),
        "unexpected fitted.classes_",
    ),
    "lacks_a_weight": (
        "net",
        lambda f, s: _restate(f, lambda a, m: a.pop(sorted(k for k in a if k.startswith("network."))[0])),
        "missing network.",
    ),
    "no_classes": ("net", lambda f, s: _restate(f, lambda a, m: m.pop("classes")), "its metadata names no classes"),
}


@pytest.fixture(scope="module")
def crafting(world, small_casme2):
    """A network bundle beside the SVM one, an audit hook recording every file this process opens,
    and the file outside the bundles that a crafted bundle points at (the loader must not touch it)."""
    base = world["base"]
    net = base / "net_model"
    ok = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "casme2",
            "--root",
            world["root"],
            "--labels",
            "seed4",
            "--method",
            "ststnet",
            "--set",
            "epochs=1",
            "--apex",
            "middle",
            "--out",
            str(net),
            "--cache",
            world["cache"],
        ],
    )
    assert ok.exit_code == 0, ok.output
    secret = shutil.copy(
        Path(world["model"]) / "classifier.skops", base / "secret.skops"
    )  # loads, if a loader followed the path
    opened: list[str] = []
    watching = []

    def record(event, args):
        if event == "open" and watching and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(record)  # stays for the session: it records only while ``watching`` holds something
    return {"svm": Path(world["model"]), "net": net, "secret": Path(secret), "opened": opened, "watching": watching}


@pytest.mark.parametrize("how", CRAFTED)
def test_a_crafted_bundle_is_refused_before_any_file_outside_it_is_opened(world, crafting, how, tmp_path):
    template, craft, culprit = CRAFTED[how]
    bundle = shutil.copytree(crafting[template], tmp_path / "bundle")
    craft(bundle, crafting["secret"])
    crafting["opened"].clear()
    crafting["watching"].append(True)
    try:
        check(["predict", "--model", str(bundle), world["clip"]], culprit)
    finally:
        crafting["watching"].clear()
    outside = [
        p
        for p in crafting["opened"]
        if not p.startswith(str(bundle) + os.sep)
        and (p.startswith(str(world["base"])) or p.startswith(str(tmp_path)) or p.startswith("/dev/"))
    ]
    assert str(bundle / "bundle.json") in crafting["opened"], "the audit hook records what the loader opens"
    assert outside == [], f"opened outside the bundle: {outside}"
    assert str(crafting["secret"]) not in crafting["opened"] and "/dev/zero" not in crafting["opened"]


def test_an_unexpected_failure_prints_its_traceback_and_asks_for_a_report(world, monkeypatch):
    import merkit.evaluation.runner

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(merkit.evaluation.runner, "evaluate_seeds", boom)
    result = runner.invoke(app, case(world, EVALUATE + "--out {new}"))
    assert result.exit_code == 1
    assert "ZeroDivisionError" in result.output and "please report it" in result.output


def test_overwrite_clears_every_output_of_the_old_run(world, tmp_path):
    """--overwrite clears every output of the old run, not only its folds."""
    run = shutil.copytree(world["run"], tmp_path / "run")
    (run / "models" / "000_casme2__sub01").mkdir(parents=True)  # as a network method's run keeps them
    assert (run / "report.md").is_file() and (run / "metrics.json").is_file() and (run / "folds").is_dir()
    from merkit.evaluation.runner import _claim

    _claim(run, {"seed": 99}, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    assert json.loads((run / "config.json").read_text()) == {"seed": 99}
