"""Apply trained models: bundles (train, save, load, verify) and prediction on any input."""

from merkit.inference.bundle import BundleError, train
from merkit.inference.predict import Model, as_clip


def load_model(path, *, task: str | None = None, classes=None, device: str | None = None) -> Model:
    """The model of the bundle at ``path`` (written by ``merkit train`` or :func:`train`).

    Checks the format, merkit's version, the task and classes if given, and every file's
    checksum; never unpickles anything. A network runs on ``device`` (default: a GPU if there
    is one, else the CPU), whichever device it was trained on.

    Examples
    --------
    >>> import merkit
    >>> merkit.load_model("no/such/bundle")
    Traceback (most recent call last):
    ...
    merkit.inference.bundle.BundleError: no/such/bundle is not a model bundle (no bundle.json); pass the --out of merkit train.
    """
    from merkit.inference.bundle import load

    return Model(*load(path, task=task, classes=classes, device=device))


__all__ = ["BundleError", "Model", "as_clip", "load_model", "train"]
