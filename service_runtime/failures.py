"""What every stage does when it gives up on a message: tell the persister the request failed."""

import json
import logging
from uuid import UUID

from nats.aio.msg import Msg

from contracts.events import FailureStage, PlanFailed
from service_runtime.bus import EventPublisher
from service_runtime.consumer import GiveUpHook
from service_runtime.delivery import GiveUp

log = logging.getLogger(__name__)


def fail_request_on_give_up(publisher: EventPublisher, stage: FailureStage) -> GiveUpHook:
    """A consumer hook publishing ``plan.failed`` for the message's request (when it names one)."""

    async def hook(msg: Msg, exc: GiveUp) -> None:
        request_id = _request_id_of(msg)
        if request_id is None:
            log.error("dropping a message that names no request on %s: %s", msg.subject, exc)
            return
        await publisher.publish(PlanFailed(request_id=request_id, stage=stage, reason=exc.reason, detail=exc.detail))

    return hook


def _request_id_of(msg: Msg) -> UUID | None:
    # Read tolerantly: the message may have failed precisely because it does not parse.
    try:
        return UUID(str(json.loads(msg.data)["request_id"]))
    except (ValueError, KeyError, TypeError):
        return None
