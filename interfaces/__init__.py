"""Entry points: the Starlette app, the `invsync` CLI, and the one composition root
(`interfaces.composition`) that builds everything from `Settings`. No work at import time."""
