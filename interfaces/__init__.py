"""Entry points: the Starlette app, the `invsync` CLI, and the one composition root that builds
everything from `Settings` (`interfaces.bootstrap` holds the parts a process runs, built by
`interfaces.composition`'s builders). No work at import time."""
