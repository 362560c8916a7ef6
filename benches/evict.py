#!/usr/bin/env python3
"""Drops the given files' pages from the page cache (posix_fadvise DONTNEED), for cold-cache
runs of benches/compare.sh. Symbolic links are followed; dirty pages are synced first."""
import os
import sys

for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    except OSError:
        pass
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
