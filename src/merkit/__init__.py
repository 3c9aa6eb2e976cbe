"""merkit: spontaneous facial micro-expression recognition.

Data flows one way: dataset -> clips -> preprocessing (cached) -> representation -> method ->
predictions -> metrics -> report; a trained model applies the same chain to new inputs.
"""

__version__ = "0.1.0"

from merkit.errors import MerkitError  # noqa: E402


def load_model(path, **checks):
    """The model bundle at ``path`` (:func:`merkit.inference.load_model`)."""
    from merkit.inference import load_model as load

    return load(path, **checks)


__all__ = ["MerkitError", "__version__", "load_model"]
