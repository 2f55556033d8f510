"""Test-only fault injection, in one place: tests stop, hold or kill a real run at a chosen point
through RECONCILER_FAULT, and prove what every such point leaves behind.

- `SIGKILL:N`, `SIGINT:N`: the process signals itself after N change statements of an apply.
- `HOLD:N`: after N statements the apply says `reconciler fault: held <tenant>` on stderr and goes
  on when a line arrives on stdin (a test reads the one and writes the other: no clock).
- `SIGKILL@<step>`: killed when a `rollback --execute` reaches a step (recorded, applied, moved,
  tagged).
- `HOLD@<step>`: at a step, says `reconciler fault: held <tenant>` and goes on when a line arrives on
  stdin (`listed`: prune-backups has listed what it would drop, before it takes the tenant's lock).
- `TELL@<step>`: says `reconciler fault: reached <step> <tenant>` on stderr at a step and goes on
  (`checks`: a tenant's data check queries are about to run), for a test to act on; and a tenant
  whose apply failed says `reconciler fault: failed <tenant>: <error>` at once, for a test waiting on
  a step that tenant will never reach (another tenant may keep the command running).

Never set outside tests; with the variable unset nothing here does anything.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field

_TELLING, _RELEASING = threading.Lock(), threading.Lock()


def _tell(line: str) -> None:
    """One whole line on stderr, written at once: `print` writes the text and its newline apart, so
    two tenants' lines could interleave ("...checks dev...checks dev-b") and a test wait on one never seen."""
    with _TELLING:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


@dataclass
class Fault:
    """The statement counter of one tenant's apply."""

    tenant: str
    stop: threading.Event = field(default_factory=threading.Event)   # set when Ctrl-C reached the run
    signal_name: str | None = None
    after: int = 0
    seen: int = 0

    @classmethod
    def from_environment(cls, tenant: str, stop: threading.Event) -> Fault:
        name, _, count = os.environ.get("RECONCILER_FAULT", "").partition(":")
        if name in ("SIGKILL", "SIGINT", "HOLD") and count.isdigit():
            return cls(tenant, stop, name, int(count))
        return cls(tenant, stop)

    def tick(self) -> None:
        self.seen += 1
        if self.signal_name is None or self.seen != self.after:
            return
        if self.signal_name == "HOLD":
            _tell(f"reconciler fault: held {self.tenant}")   # tenants of one run hold at once; each is let go by a line of its own
            with _RELEASING:   # one reader at a time: stdin's buffer is not for threads to share
                sys.stdin.readline()
            return
        os.kill(os.getpid(), getattr(signal, self.signal_name))
        if threading.current_thread() is not threading.main_thread():
            self.stop.wait()   # Ctrl-C lands in the main thread; it tells the tenants before any goes on


def reached(step: str, tenant: str = "") -> None:
    """A named point: a step of a multi-step operation (rollback --execute), or of a tenant's work."""
    fault = os.environ.get("RECONCILER_FAULT")
    if fault == f"SIGKILL@{step}":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == f"TELL@{step}":
        _tell(f"reconciler fault: reached {step} {tenant}".rstrip())
    elif fault == f"HOLD@{step}":
        _tell(f"reconciler fault: held {tenant}")
        with _RELEASING:
            sys.stdin.readline()


def failed(tenant: str, error: BaseException) -> None:
    """Under TELL@, a tenant's apply that failed, said as it fails rather than when every tenant ended."""
    if os.environ.get("RECONCILER_FAULT", "").startswith("TELL@"):
        _tell(f"reconciler fault: failed {tenant}: {error}")
