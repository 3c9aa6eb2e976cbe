"""``python -m merkit``: the ``merkit`` command."""

from merkit.cli import main

if __name__ == "__main__":
    main()
