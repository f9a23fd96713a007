"""The baseline of `benchmarks/intake.py`: a bare Starlette endpoint that reads the body and
answers 200, served by the same uvicorn settings as invsync."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "stored"})


app = Starlette(routes=[Route("/webhooks/{channel_id}", accept, methods=["POST"])])
