"""A billing worker process for crash tests: runs due work at a given moment, and can be told
to die by SIGKILL just before or just after the provider performs a given action.

    python -m tests.sessions.crash_worker NOW_ISO [ACTION WHEN]

The provider wrapper is a fault injector at the external boundary; everything else is the
real worker, engine and simulated provider on the real database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime
from typing import Any

from vidivo.app import build_context
from vidivo.clock import TestClock
from vidivo.config import Settings


class DieAround:
    def __init__(self, inner: Any, action: str, when: str) -> None:
        self._inner = inner
        self._action = action
        self._when = when
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if (
            name
            != {"hold": "place_hold", "capture": "capture_hold", "cancel": "cancel_hold"}[
                self._action
            ]
        ):
            return target

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = await target(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # done at the provider, not yet recorded
            return result

        return wrapped


async def main(now: datetime, action: str | None, when: str | None) -> None:
    settings = Settings()
    context = build_context(settings, TestClock(now))
    if action and when:
        provider = DieAround(context.payments, action, when)
        context.billing._provider = provider
    await context.worker.run_due()
    await context.engine.dispose()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    moment = datetime.fromisoformat(arguments[0])
    asyncio.run(main(moment, *(arguments[1:3] if len(arguments) >= 3 else (None, None))))
