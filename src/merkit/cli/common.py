"""What every command shares: the app, the console, the error boundary, the common options and
the parsing of settings, seeds and paths."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from merkit.errors import ConfigError, MerkitError
from merkit.progress import show_progress

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Spontaneous facial micro-expression recognition.")
console = Console()


def _print_version(asked: bool) -> None:
    if asked:
        from merkit import __version__

        console.print(f"merkit {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print merkit's version and exit.")
    ] = False,
) -> None:
    """Spontaneous facial micro-expression recognition."""


def friendly(command):
    """The one boundary for errors. Bad input (a MerkitError) prints one message and exits 2,
    without a traceback; anything else is a bug: its traceback, a request to report it, exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        show_progress(True)
        previous = stop_on_sigterm()
        try:
            return command(*args, **kwargs)
        except MerkitError as error:
            console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            console.print("Interrupted; run the same command again to resume where it stopped.")
            raise typer.Exit(130) from None
        except Exception:
            console.print_exception()
            import platform

            from merkit import __version__

            console.print(
                f"[bold red]merkit failed unexpectedly.[/] This is a bug: please report it to merkit's "
                "maintainers, wherever you got merkit from, with the command you ran, this traceback and "
                f"these versions: merkit {__version__}, Python {platform.python_version()}, {platform.platform()}.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)

    return wrapper


def stop_on_sigterm():
    """SIGTERM (``kill``, a scheduler cancelling the job) stops a command as Ctrl-C does: its
    workers end, what is written stays, exit 130. Returns the handler it replaced (None off the
    main thread, where signals cannot be handled)."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, interrupt)
    return None


def parse_settings(settings: list[str] | None, flag: str = "--set") -> dict:
    """``["C=10", "radius=1,1,4"]`` -> ``{"C": "10", "radius": "1,1,4"}`` (typed by their user)."""
    parsed = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes NAME=VALUE; got {item!r}.")
        parsed[key.strip()] = value.strip()
    return parsed


def spotter_from(name: str, settings: list[str] | None, bundle: Path | None):
    """The spotter ``--spotter NAME --set ...`` or ``--spotter-model BUNDLE`` asks for."""
    from merkit.spotting import create_spotter

    if bundle is None:
        return create_spotter(name, **parse_settings(settings))
    from merkit.inference.bundle import load_spotter

    if settings:
        raise ConfigError("--set changes a spotter's parameters; a --spotter-model keeps those it was trained with.")
    return load_spotter(bundle)


def check_positive(flag: str, value: float) -> float:
    """``value`` if it is above zero, else a ConfigError naming ``flag``."""
    if not value > 0:
        raise ConfigError(f"{flag} must be positive; got {value}.")
    return value


def check_writable_file(path: Path, suffixes: tuple[str, ...]) -> Path:
    """Check, before any work, that ``path`` has one of ``suffixes`` and that its folder can be written."""
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{path}: name the output file with {' or '.join(suffixes)}.")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; name a file to write.")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"Cannot create the folder {folder} for {path.name} ({error.strerror}); choose another output path."
        ) from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"Cannot write into {folder} (permission denied); choose another output path.")
    return path


DatasetOption = Annotated[str, typer.Option(help="Dataset name (merkit list datasets).")]
RootOption = Annotated[Path, typer.Option(help="The dataset's folder as distributed (for a manifest, its .csv).")]
LabelsOption = Annotated[
    str | None,
    typer.Option(
        help="Label scheme (merkit list labels); default: the method's paper's for this dataset, else the dataset's usual one."
    ),
]
ReaderOptions = Annotated[
    list[str] | None, typer.Option("--option", help="Reader option NAME=VALUE, e.g. variant=cropped, smic_root=PATH.")
]
MethodOption = Annotated[str, typer.Option(help="Method name (merkit list methods).")]
ApexOption = Annotated[str, typer.Option(help="Missing apexes: annotated (leave empty), middle, or motion.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Method hyper-parameter NAME=VALUE (repeatable).")]
CacheOption = Annotated[Path | None, typer.Option(help="Preprocessing cache folder.")]
ExecutorOption = Annotated[str, typer.Option(help="Where folds and clips run: local (processes here) or ray.")]
AddressOption = Annotated[
    str | None, typer.Option(help="Ray cluster to use: auto or HOST:PORT of its head (default: start one here).")
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        help="Where a network model runs: cpu, cuda or cuda:N (default: a GPU if PyTorch sees one, else the CPU), whatever device it was trained on."
    ),
]
StorageOption = Annotated[
    str,
    typer.Option(
        help="With ray: shared (every node sees the data and --cache at the same paths) or driver (only this machine does; representations travel through Ray's object store)."
    ),
]


def executor_for(executor: str, jobs: int, address: str | None, params: dict | None = None, storage: str = "shared"):
    """The executor the command line asks for; ``--address`` only with ray. A network method on
    ``device=cuda`` asks Ray for a GPU per fold."""
    from merkit.executors import make_executor

    check_positive("--jobs", jobs)
    if address and executor != "ray":
        raise ConfigError("--address names a Ray cluster; pass --executor ray with it.")
    gpus = 1 if str((params or {}).get("device", "cpu")).startswith("cuda") else 0
    return make_executor(executor, jobs=jobs, address=address, num_gpus=gpus, storage=storage)


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; a ConfigError for anything else."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas (0,1,2); got {text!r}.") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must name one or more distinct seeds, e.g. 0,1,2; got {text!r}.")
    return seeds


def resolve_labels(method: str, dataset: str, labels: str | None) -> tuple[str | None, str]:
    """The label scheme to use and where it comes from: ``--labels``, else the scheme the method's
    paper used on this dataset, else the dataset's default (None)."""
    from merkit.methods import method_class

    if labels:
        return labels, "--labels"
    paper = method_class(method).paper_labels.get(dataset)
    return (paper, f"{method}'s paper") if paper else (None, "the dataset's default")


def load_dataset(dataset: str, root: Path, labels: str | None, option: list[str] | None, apex: str = "annotated"):
    """The dataset as the command line describes it, missing apexes filled as ``--apex`` says."""
    from merkit.datasets import load
    from merkit.preprocess.apex import fill_apex

    return fill_apex(load(dataset, root=root, labels=labels, **parse_settings(option, "--option")), apex)
