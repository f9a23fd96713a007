"""One folder per channel kind: its configuration model (`config.py`), signature verifier,
payload translator and gateway, registered by one spec (`kind.py`). Adding a channel means adding
a folder, its model in `infrastructure/config.py`'s union and its spec in `kinds.py`. A channel's
test double lives apart, in `sandboxes/<kind>/`."""
