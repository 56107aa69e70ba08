"""One asyncio event loop for the whole run, kept running between steps.

behave runs a step, then returns to its own (synchronous) code until the next one. An
event loop that only runs while a step runs would leave every open socket unserviced in
between: pings unanswered, frames not read, timestamps wrong. So the harness owns one
loop in a background thread for the whole run. Async step definitions are submitted to it
and the step waits for their result; sockets opened in one step stay serviced until the
scenario ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from typing import Any, Awaitable, Callable, Coroutine


async def bounded(coroutines, limit: int) -> list:
    """Run ``coroutines`` with at most ``limit`` at once; return their results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


class HarnessLoop:
    """An event loop running in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="harness-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coroutine`` on the harness loop and return its result.

        Ctrl-C while waiting cancels the coroutine and re-raises KeyboardInterrupt.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the coroutine's own TimeoutError, not this deadline
            future.cancel()
            raise TimeoutError(f"the harness gave up after {timeout} s") from None
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Cancel what is left on the loop and stop its thread."""
        if self._loop.is_closed():
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(_cancel_all(), timeout=5)
        except Exception:  # closing must not mask the run's real outcome
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


def harness_step(step: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Turn an ``async def`` step into one behave can call, run on the harness loop.

    After the step, the scenario's leak detector is consulted: a step that passes its own
    checks still fails if any socket saw another party's data meanwhile. A failure's message
    is redacted here, at its source, so no token or secret it quotes reaches behave's output,
    its JSON or the Allure result's status details.
    """

    @functools.wraps(step)
    def run_on_harness_loop(context, *args, **kwargs):
        try:
            context.harness.loop.run(step(context, *args, **kwargs))
            context.world.leak_detector.raise_if_violated()
        except Exception as failure:
            redacted = context.harness.redactor.redact(str(failure))
            if redacted == str(failure):
                raise
            # A message that quoted a secret: the same failure, told without it (and without
            # the original, whose message and arguments still hold the secret).
            raise (AssertionError if isinstance(failure, AssertionError) else RuntimeError)(redacted) from None

    return run_on_harness_loop
