"""The client's stream: a WebRTC offer starts one (taking over from the previous one),
a stop ends it."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from tether.media.sdp_check import MAX_SDP_BYTES, BadOffer, check_offer_sdp
from tether.studio.cloud_status import CloudStatus
from tether.studio.routes.deps import StudioDep
from tether.studio.routes.parameters import check_parameters

logger = logging.getLogger(__name__)

router = APIRouter()


class OfferBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    sdp: str = Field(min_length=1, max_length=MAX_SDP_BYTES)
    type: Literal["offer"]
    initial_parameters: dict[str, Any] | None = Field(default=None, alias="initialParameters")


@router.post("/api/v1/webrtc/offer")
async def offer(body: OfferBody, studio: StudioDep) -> dict[str, Any]:
    # Checked in full before the offer takes over: a rejected one changes nothing.
    if body.initial_parameters:
        check_parameters(studio, body.initial_parameters)
    try:
        check_offer_sdp(body.sdp)
    except BadOffer as exc:
        raise HTTPException(400, f"could not accept the offer: {exc}") from None
    try:
        return await studio.offer(body.sdp, body.type, body.initial_parameters)
    except ValueError as exc:
        raise HTTPException(400, f"could not accept the offer: {exc}") from None
    except Exception:  # aiortc may trip on a hostile offer in its own ways
        # Refused input, not our fault: no stack trace unless asked for.
        logger.info("offer refused: aiortc could not apply it", exc_info=logger.isEnabledFor(10))
        raise HTTPException(
            400, "could not accept the offer: its SDP passed our checks but could not be applied"
        ) from None


@router.post("/api/v1/webrtc/stop")
async def stop_stream(studio: StudioDep) -> CloudStatus:
    await studio.stop_stream()
    return studio.status()
