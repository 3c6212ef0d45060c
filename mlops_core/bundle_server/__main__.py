"""`python -m mlops_bundle_server`: serve the bundle on MLOPS_HOST:MLOPS_PORT (0.0.0.0:8080)."""

import importlib.util
import logging
import os

import uvicorn


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("MLOPS_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .server import create_app

    # uvloop and httptools (in requirements.txt) as the Hub's service uses them; uvicorn's own otherwise
    fast = importlib.util.find_spec("uvloop") is not None and importlib.util.find_spec("httptools") is not None
    uvicorn.run(
        create_app(),
        loop="uvloop" if fast else "auto",
        http="httptools" if fast else "auto",
        host=os.environ.get("MLOPS_HOST", "0.0.0.0"),  # noqa: S104 - a container's server listens on all interfaces
        port=int(os.environ.get("MLOPS_PORT", "8080")),
        log_level=os.environ.get("MLOPS_LOG_LEVEL", "info").lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
