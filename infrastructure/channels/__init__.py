"""One folder per channel: its signature verifier, payload translator, gateway and sandbox.
Adding a channel means adding a folder and one line in `registry.py`."""
