"""Benchmarks of selfprompt-kit (``make bench``); not part of the installed package."""
