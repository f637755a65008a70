"""`python -m service`: run the API with uvicorn on the embedded defaults."""

from __future__ import annotations

import argparse

import uvicorn

from service.app import create_app
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the try-on service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(create_app(Settings()), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
