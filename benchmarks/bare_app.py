"""The baseline of `benchmarks/intake.py`: the strongest plain alternative to invsync's intake, a
bare Starlette endpoint that reads the body, checks its Shopify HMAC and answers 200 (401 when
the signature is wrong), storing nothing. Served by uvicorn on uvloop and httptools:

    uvicorn benchmarks.bare_app:app --loop uvloop --http httptools --no-access-log
"""

import base64
import hashlib
import hmac
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET = os.environ.get("BENCH_WEBHOOK_SECRET", "bench-secret").encode()


async def accept(request: Request) -> JSONResponse:
    body = await request.body()
    expected = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest())
    given = request.headers.get("x-shopify-hmac-sha256", "").encode()
    if not hmac.compare_digest(expected, given):
        return JSONResponse({"title": "Signature invalid"}, status_code=401)
    return JSONResponse({"status": "stored"})


app = Starlette(routes=[Route("/webhooks/{channel_id}", accept, methods=["POST"])])
