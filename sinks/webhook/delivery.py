"""One target's delivery loop: drain its outbox with retries, a rate limit, a group interval, and
dead letters for what the target refuses for good.

- Transient failures (connection, timeout, 408/425/429/5xx, SMTP 4xx) are retried with
  exponential backoff and jitter, forever: the notifications stay in the outbox (and
  in the state file), where newer states of an alert replace older ones.
- Permanent refusals (other 4xx, SMTP 5xx, a DingTalk errcode) cannot succeed by
  resending: the notifications go to the dead-letter queue (data_dir/dead_letter/,
  component `<sink>/<target>`) with the reason, and are counted as `failed`.
- `rate_limit`: deliveries per rolling minute; `group_interval`: a pause after each
  delivery, so what arrives meanwhile goes out in the next one (email: one mail per
  group per interval).
"""

from __future__ import annotations

import asyncio
import logging
import time

from pipeline.config import RetryOptions
from pipeline.dlq import DeadLetterQueue
from pipeline.retry import Backoff
from sinks.webhook.aggregate import RateLimiter
from sinks.webhook.httpbase import DeliveryError, Target
from sinks.webhook.metrics import WebhookStats
from sinks.webhook.outbox import Outbox
from sinks.webhook.state import Persister


async def deliver_loop(
    target: Target,
    outbox: Outbox,
    retry: RetryOptions,
    stats: WebhookStats,
    persister: Persister,
    dlq: DeadLetterQueue | None,
    log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
) -> None:
    backoff = Backoff(retry.initial_backoff, retry.max_backoff)
    limiter = RateLimiter(target.rate_limit) if target.rate_limit else None
    while True:
        entries = outbox.peek(target.max_batch)
        if not entries:
            outbox.changed.clear()
            await outbox.changed.wait()
            continue
        if limiter is not None:
            wait = limiter.wait_time(time.time())
            if wait > 0:
                await asyncio.sleep(wait)  # meanwhile newer states replace older ones in the outbox
                continue
            limiter.allow(time.time())
        notes = [note for _, _, note in entries]
        try:
            await target.deliver(notes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            if permanent:
                if dlq is not None:
                    component = f"{stats.component}/{target.name}"
                    try:
                        await asyncio.to_thread(dlq.write, component, notes, f"notification refused: {error}")
                    except OSError as dlq_exc:  # cannot keep them: retry delivery rather than lose them
                        log.error("webhook dead letter write failed", extra={"error": str(dlq_exc)})
                        await asyncio.sleep(backoff.next_delay())
                        continue
                outbox.ack(entries)
                persister.changed()
                stats.count(target.name, "failed", len(entries))
                log.error(
                    "webhook notification refused; dead-lettered",
                    extra={"target": target.name, "error": error, "notifications": len(entries)},
                )
                continue
            target.last_error = error
            stats.retry(target.name)
            delay = backoff.next_delay()
            if backoff.attempts & (backoff.attempts - 1) == 0:  # log attempts 1, 2, 4, 8, ...
                log.warning(
                    "webhook delivery failed; retrying",
                    extra={
                        "target": target.name,
                        "error": error,
                        "attempt": backoff.attempts,
                        "retry_in_s": round(delay, 3),
                        "pending": len(outbox),
                    },
                )
            await asyncio.sleep(delay)
            continue
        if target.last_error is not None:
            log.info("webhook delivery recovered", extra={"target": target.name, "attempts": backoff.attempts + 1})
        target.last_error = None
        backoff.reset()
        outbox.ack(entries)
        persister.changed()
        stats.count(target.name, "delivered", len(entries))
        if target.group_interval:
            await asyncio.sleep(target.group_interval)
