"""A hand-written site with zmqfeed in its own look (tests/test_othersite.py, README)."""
