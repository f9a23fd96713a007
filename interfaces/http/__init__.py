"""The Starlette web app: health probes and the internal JSON API."""
