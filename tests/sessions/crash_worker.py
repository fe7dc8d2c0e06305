"""A billing worker process for crash tests: runs due work at a given moment, and can be told
to die by SIGKILL just before or just after the provider performs a given action.

    python -m tests.sessions.crash_worker NOW_ISO [ACTION WHEN]
    python -m tests.sessions.crash_worker NOW_ISO random SEED   # die at a random provider call

The provider wrapper is a fault injector at the external boundary; everything else is the
real worker, engine and simulated provider on the real database.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from datetime import datetime
from typing import Any

from vidivo.app import build_context
from vidivo.core.clock import TestClock
from vidivo.core.config import Settings
from vidivo.core.db import dispose


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


class DieAtRandom:
    """SIGKILL just before or just after the k-th provider call, k and the side drawn from
    the seed: somewhere in the middle of a worker pass, wherever that happens to be."""

    ACTIONS = frozenset({"place_hold", "capture_hold", "cancel_hold"})

    def __init__(self, inner: Any, seed: int) -> None:
        chance = random.Random(seed)
        self._inner = inner
        self._left = chance.randint(1, 40)
        self._after = chance.random() < 0.5
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in self.ACTIONS:
            return target

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left == 0 and not self._after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = await target(*args, **kwargs)
            if self._left == 0:
                os.kill(os.getpid(), signal.SIGKILL)  # done at the provider, not yet recorded
            return result

        return wrapped


async def main(now: datetime, action: str | None, when: str | None) -> None:
    settings = Settings()
    context = build_context(settings, TestClock(now))
    if action == "random" and when:
        context.billing._provider = DieAtRandom(context.payments, int(when))
    elif action and when:
        provider = DieAround(context.payments, action, when)
        context.billing._provider = provider
    await context.worker.run_due()
    await dispose(context.engine)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    moment = datetime.fromisoformat(arguments[0])
    asyncio.run(main(moment, *(arguments[1:3] if len(arguments) >= 3 else (None, None))))
