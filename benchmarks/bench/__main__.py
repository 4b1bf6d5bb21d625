"""``python -m benchmarks.bench``: the bench's table (``--help`` for its options)."""
import contextlib
import sys

from benchmarks.bench.run import main

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
