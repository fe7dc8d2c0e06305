"""The calls domain's objects, as narrow request dependencies (see `vidivo.core.deps`)."""

from __future__ import annotations

from typing import Annotated

from vidivo.calls.engine import BillingEngine
from vidivo.calls.service import CallService
from vidivo.core.deps import provided

Calls = Annotated[CallService, provided(CallService)]
Billing = Annotated[BillingEngine, provided(BillingEngine)]
