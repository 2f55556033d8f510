"""Running one piece of work per tenant at once, and stopping them all on Ctrl-C.

Owns the thread pool tenants are planned and applied on (each on its own connection) and the
stop event an apply checks before every statement. Never talks to a tenant itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

MAX_PARALLEL_TENANTS = 8
STOP = threading.Event()   # set on Ctrl-C: every tenant's apply rolls back at its next statement


def each_tenant(items: Sequence, work) -> list:
    """`work(item)` for every tenant at once, each on its own connection; results (or the
    exception raised) in the items' order. Ctrl-C stops them all, each rolling back."""
    if len(items) <= 1:
        return [_outcome(work, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), MAX_PARALLEL_TENANTS)) as pool:
        futures = [pool.submit(_outcome, work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            STOP.set()
            while True:   # a second Ctrl-C must not let a tenant go on (and commit) before it stopped
                try:
                    wait(futures)
                    break
                except KeyboardInterrupt:
                    continue
            raise
        finally:
            STOP.clear()


def _outcome(work, item):
    try:
        return work(item)
    except Exception as error:  # noqa: BLE001 - handed back to the caller, which decides
        return error
