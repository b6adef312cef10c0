"""``python -m kosearch`` runs the same command line as the ``kosearch`` script."""

from kosearch.cli import main

if __name__ == "__main__":
    main()
