#!/usr/bin/env python3
"""Runs a command and prints its peak private (anonymous) memory in KiB: the largest RssAnon of
/proc/PID/status seen while it runs, polled every millisecond. Mapped file pages (RssFile) are
page cache, shared and reclaimable, so they are not counted; VmHWM would count them.

  peakmem.py COMMAND [ARGS...]     (stdout of the command is discarded)
"""
import subprocess
import sys
import time

p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peak = 0
status = f"/proc/{p.pid}/status"
while p.poll() is None:
    try:
        with open(status) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
                    break
    except (FileNotFoundError, ProcessLookupError, ValueError):
        break
    time.sleep(0.001)
if p.returncode not in (0, None):
    sys.exit(f"{sys.argv[1:]} exited {p.returncode}")
print(peak)
