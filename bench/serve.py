"""Run one server for the benchmark: ``python -m bench.serve app|bare PORT`` (uvicorn, one worker, no access log,
the same HTTP protocol implementation as ``contactcard serve``).

``app`` is ``contactcard serve`` (settings from the environment); ``bare`` is ``bench.bare_app`` answering a
page of ``BENCH_BODY_SIZE`` bytes.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from starlette.applications import Starlette

from contactcard.serving import HTTP_PROTOCOL


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app: Starlette
    if kind == "app":
        from contactcard.app import create_app
        from contactcard.config import Settings

        app = create_app(Settings.from_env())
    else:
        from .bare_app import create_bare_app

        app = create_bare_app(int(os.environ["BENCH_BODY_SIZE"]))
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, access_log=False, log_level="warning",
                server_header=False, proxy_headers=False, http=HTTP_PROTOCOL)


if __name__ == "__main__":
    main()
