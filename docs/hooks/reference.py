"""MkDocs hook: a reference page per command, method, dataset and spotter, made at build time
from merkit's command line and registries, so that no page can drift from the code it describes.

The pages live under ``reference/`` in the built site; ``mkdocs.yml``'s nav gets a section per
kind (``on_config``), and each page is added as a generated file (``on_files``).
"""

from __future__ import annotations

import inspect

from mkdocs.structure.files import File

# The hand-written notes of measured figures, by registered name.
NOTES = {
    "lbptop_svm": "lbptop_svm.md",
    "mdmo_svm": "mdmo_svm.md",
    "mer_rcnn": "mer_rcnn.md",
    "stanet": "stanet.md",
    "ststnet": "apex_flow_nets.md",
    "offapexnet": "apex_flow_nets.md",
    "sssnet": "apex_flow_nets.md",
    "htnet": "htnet_rcn.md",
    "rcn": "htnet_rcn.md",
    "apex_flow_svm": "leaderboard.md",
    "ensemble": "leaderboard.md",
    "au_prevalence": "action_units.md",
    "roi_flow": "spotting.md",
    "feature_difference": "spotting.md",
    "softnet": "spotting.md",
}


def _cell(text) -> str:
    """``text`` fit for one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _notes(name: str) -> str:
    page = NOTES.get(name)
    return f"\nMeasured notes: [{page}](../../{page}).\n" if page else ""


def _parameters(params: dict) -> str:
    if not params:
        return "No parameters.\n"
    rows = "".join(f"| `{name}` | `{_cell(value)}` |\n" for name, value in params.items())
    return f"| parameter (`--set NAME=VALUE`) | default |\n| --- | --- |\n{rows}"


def _api(obj) -> str:
    """The mkdocstrings block that renders ``obj``'s docstring (not its members)."""
    path = f"{obj.__module__}.{obj.__qualname__}"
    return f"::: {path}\n    options:\n      show_root_heading: false\n      members: false\n"


def command_pages() -> dict[str, str]:
    """``{"evaluate": markdown, "datasets check": markdown, ...}``: usage, help and every option."""
    import click
    import typer.main

    from merkit.cli import app

    root = typer.main.get_command(app)
    pages = {}

    def walk(group, prefix):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
                continue
            full = f"{prefix}{name}"
            context = click.Context(command, info_name=f"merkit {full}")
            usage = " ".join(command.collect_usage_pieces(context))
            rows = []
            for param in command.params:
                if isinstance(param, click.Argument):
                    names, kind = param.human_readable_name, "argument"
                else:
                    names, kind = ", ".join(param.opts + param.secondary_opts), "option"
                default = "" if param.required or param.default in (None, ()) else f"`{_cell(param.default)}`"
                rows.append(
                    f"| `{_cell(names)}` | {kind}{' (required)' if param.required else ''} | "
                    f"{default} | {_cell(getattr(param, 'help', '') or '')} |\n"
                )
            pages[full] = (
                f"# merkit {full}\n\n```\nmerkit {full} {usage}\n```\n\n{inspect.cleandoc(command.help or '')}\n\n"
                "| name | kind | default | what |\n| --- | --- | --- | --- |\n" + "".join(rows)
            )

    walk(root, "")
    return pages


def method_pages() -> dict[str, str]:
    from merkit.methods import create_method, list_methods

    pages = {}
    for cls in list_methods():
        labels = ", ".join(f"{dataset}: `{scheme}`" for dataset, scheme in cls.paper_labels.items())
        pages[cls.name] = (
            f"# {cls.name}\n\n{cls.summary}\n\n"
            f"`merkit evaluate --method {cls.name}`; quick on a CPU (in `merkit demo`): "
            f"{'yes' if cls.quick else 'no'}."
            + (f" Its paper's label schemes, used when `--labels` is not given: {labels}." if labels else "")
            + "\n"
            + _notes(cls.name)
            + "\n## Parameters\n\n"
            + _parameters(create_method(cls.name).params())
            + "\n## Description\n\n"
            + _api(cls)
        )
    return pages


def spotter_pages() -> dict[str, str]:
    from merkit.spotting import create_spotter, list_spotters

    pages = {}
    for cls in list_spotters():
        spotter = create_spotter(cls.name)
        params = {k: v for k, v in vars(spotter).items() if not k.startswith("_")}
        pages[cls.name] = (
            f"# {cls.name}\n\n{cls.summary}\n\n`merkit analyze --spotter {cls.name}`, "
            f"`merkit spot-evaluate --spotter {cls.name}`; "
            + (
                "learned: trained inside the folds of `spot-evaluate`, or by `merkit train --task spotting`."
                if cls.learns
                else "hand-crafted: runs without training."
            )
            + "\n"
            + _notes(cls.name)
            + "\n## Parameters\n\n"
            + _parameters(params)
            + "\n## Description\n\n"
            + _api(cls)
        )
    return pages


def dataset_pages() -> dict[str, str]:
    from merkit.datasets import list_datasets
    from merkit.datasets.long_videos import LONG_DATASETS

    pages = {}
    for info in list_datasets():
        reader = getattr(info.reader, "func", info.reader)
        pages[info.name] = (
            f"# {info.name}\n\n{info.summary}\n\n`merkit evaluate --dataset {info.name} --root FOLDER`; "
            f"default label scheme `{info.default_labels}` (`merkit list labels`). The layouts, label "
            "schemes and protocols: [your data](../../guide/data.md).\n\n## Reader\n\n" + _api(reader)
        )
    for name, (reader, summary) in LONG_DATASETS.items():
        pages[name] = (
            f"# {name}\n\n{summary}\n\n`merkit spot-evaluate --dataset {name} --root FOLDER` "
            "([analysing recordings](../../guide/analyze.md)).\n\n## Reader\n\n" + _api(reader)
        )
    return pages


SECTIONS = {
    "Commands": ("commands", command_pages),
    "Methods": ("methods", method_pages),
    "Datasets": ("datasets", dataset_pages),
    "Spotters": ("spotters", spotter_pages),
}
_pages: dict[str, str] = {}


def _path(folder: str, name: str) -> str:
    return f"reference/{folder}/{name.replace(' ', '-')}.md"


def on_config(config):
    _pages.clear()
    reference = []
    for title, (folder, make) in SECTIONS.items():
        pages = make()
        _pages.update({_path(folder, name): text for name, text in pages.items()})
        reference.append({title: [{name: _path(folder, name)} for name in sorted(pages)]})
    for i, entry in enumerate(config.nav):
        if isinstance(entry, dict) and "Reference" in entry:
            config.nav[i] = {"Reference": reference}
    return config


def on_files(files, config):
    for path, text in _pages.items():
        files.append(File.generated(config, path, content=text))
    return files
