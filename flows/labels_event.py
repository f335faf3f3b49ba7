"""Emitting the ``ferv.labels.landed`` event that a landing (tasks/annotate/land.py) returns.

The event goes out when a Prefect server is configured (``PREFECT_API_URL``) or a flow run is active
(the ``annotate`` flow); otherwise there is nobody to tell, and starting a throw-away server just to send
it would take tens of seconds, so it is logged and returned unsent (``LandedEvent.sent`` stays False).
Emitting never raises for want of a server and never blocks: the labels are written before it.

    >>> result = announce_landing(land(catalog, cfg.annotate, ctx, batch_id="b0001"))   # doctest: +SKIP
    >>> result.event.sent
    True
"""

from __future__ import annotations

import logging
from dataclasses import replace

from tasks.annotate.land import LandedEvent, LandResult

log = logging.getLogger(__name__)


def emit_labels_landed(landed: LandedEvent) -> LandedEvent:
    """Send ``landed`` where there is a server to receive it; the same event with ``sent`` set."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL

    name = landed.resource["prefect.resource.id"]
    if not PREFECT_API_URL.value() and FlowRunContext.get() is None:
        log.info("no Prefect server configured: event %s for %s not sent", landed.event, name)
        return replace(landed, sent=False)
    from prefect.events import emit_event

    try:
        sent = emit_event(event=landed.event, resource=landed.resource, payload=landed.payload) is not None
    except Exception as exc:  # an event too large, a broken client: the labels are written regardless
        log.warning("event %s not sent: %s", landed.event, exc)
        sent = False
    return replace(landed, sent=sent)


def announce_landing(result: LandResult) -> LandResult:
    """``result`` with its landed event emitted (see :func:`emit_labels_landed`)."""
    return replace(result, event=emit_labels_landed(result.event))
