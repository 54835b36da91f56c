"""``python -m tests.fake_provider --port N``: run the fake provider as its own process."""

from __future__ import annotations

import argparse

from aiohttp import web

from tests.fake_provider.server import make_app

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=9001)
args = parser.parse_args()
web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)
