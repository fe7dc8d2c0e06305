"""The calls domain's objects, as narrow request dependencies (see `vidivo.core.deps`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from vidivo.calls.engine import BillingEngine
from vidivo.calls.receipt_links import ReceiptLinks
from vidivo.calls.service import CallService
from vidivo.calls.start import CallStarter
from vidivo.core.deps import provided
from vidivo.core.logs import call_session_id

Calls = Annotated[CallService, provided(CallService)]
Starts = Annotated[CallStarter, provided(CallStarter)]
Billing = Annotated[BillingEngine, provided(BillingEngine)]
ReceiptAddresses = Annotated[ReceiptLinks, provided(ReceiptLinks)]


async def _log_call_session(connection: HTTPConnection) -> None:
    # Set, not reset: the request's own context ends with it (see `core.request_ids`).
    if session_id := connection.path_params.get("session_id"):
        call_session_id.set(session_id)


# On a router: every line logged while one of its routes handles a call names the call.
LoggedCallSession = Depends(_log_call_session)
