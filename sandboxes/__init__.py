"""The channels' test doubles: Shopify, WooCommerce and Amazon stores on this machine, each a real
HTTP server speaking the channel's documented API and sending its webhooks as the channel signs
and retries them (one folder per channel, one shared `webhooks` sender), and the demo's stores.

Not part of the product: domain, application and infrastructure never import it, and the
interfaces only where `invsync run` starts the demo (an import-linter contract). The tests, the
benchmarks and the demo import it. Its libraries (graphql-core, jsonschema_rs) come with the
`sandbox` extra. It may import the product's data types where a wire format is the product's own
business, never a verifier or signer: a sandbox signs as the channel documents, so a mistake in
our verifiers cannot cancel out in the tests."""
