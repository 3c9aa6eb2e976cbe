"""merkit: spontaneous facial micro-expression recognition.

Data flows one way: dataset -> clips -> preprocessing (cached) -> representation -> method ->
predictions -> metrics -> report.
"""

__version__ = "0.1.0"

from merkit.errors import MerkitError  # noqa: E402

__all__ = ["MerkitError", "__version__"]
