"""One-time notices from deep inside kosearch (such as the bundled model's first-use conversion), for the front end.

Library code logs them on the ``kosearch`` logger at INFO: a Python caller sees them once it configures
logging, and the CLI calls :func:`show_notices` so that they appear on stderr, away from ``--json`` output.
Nothing here knows about consoles, so the encoders can announce slow steps without importing the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

LOGGER_NAME = "kosearch"


class _Forward(logging.Handler):
    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.show = show

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.show(record.getMessage())
        except Exception:  # a notice must never break the command that logged it
            self.handleError(record)


def show_notices(show: Callable[[str], None]) -> None:
    """Hand every INFO (or louder) record of the ``kosearch`` loggers to ``show``, replacing an earlier ``show``."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [handler for handler in logger.handlers if isinstance(handler, _Forward)]:
        logger.removeHandler(handler)
    logger.addHandler(_Forward(show))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
