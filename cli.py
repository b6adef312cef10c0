"""Run the kosearch command line from a checkout without installing: ``python cli.py --help``."""

from kosearch.cli import main

if __name__ == "__main__":
    main()
