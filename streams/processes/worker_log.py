"""Reading a worker's log from outside: when has a `returnhook worker` process come up?

The demo, the bench and the tests start workers as subprocesses and wait on these lines.
"""

from __future__ import annotations

import re

# What faust 0.15.3 logs at INFO once a worker is up (checked against real runs):
#   Setting newly assigned partitions ... for group <app id>   (the group gave it partitions)
#   [^---Recovery]: Worker ready                                (tables recovered)
#   [^Worker]: Ready                                            (every service started)
# `[^Worker]` is matched leniently: it has more dashes when nested. In JSON log format the same
# text sits inside the "message" field, so the patterns match there too.
_READY = re.compile(r"\[\^-*Worker\]: Ready\b")
_ASSIGNED = re.compile(r"Setting newly assigned partitions")


def worker_ready(log_text: str) -> bool:
    """True once the log shows partitions assigned and every service started."""
    return bool(_ASSIGNED.search(log_text) and _READY.search(log_text))
