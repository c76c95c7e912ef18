"""ASGI applications of sites other than the demo, for tests that start daphne on them."""
