"""The HTTP service: ``kosearch serve INDEX`` puts the ``kosearch.Index`` facade behind FastAPI.

- :mod:`kosearch.serve.app` builds the application (routes, error mapping, the search page);
- :mod:`kosearch.serve.limits` declares the request limits once (query length, k, batch, body size);
- :mod:`kosearch.serve.body_limit` refuses over-long request bodies before they are read whole;
- :mod:`kosearch.serve.models` derives the request schemas from the facade's own option dataclass;
- ``static/`` is the search page: plain HTML, CSS and JavaScript, no build step, no CDN.

The service goes through the same facade as the CLI, so every JSON shape equals the CLI's ``--json``.
"""

from kosearch.serve.app import create_app
from kosearch.serve.limits import ServiceLimits

__all__ = ["ServiceLimits", "create_app"]
