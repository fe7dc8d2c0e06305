"""The links domain's objects, as the composition root built them."""

from __future__ import annotations

from typing import Annotated

from vidivo.core.deps import provided
from vidivo.links.lookup_guard import LookupGuard
from vidivo.links.public_cache import PublicLinkCache

PublicLinks = Annotated[PublicLinkCache, provided(PublicLinkCache)]
LinkLookups = Annotated[LookupGuard, provided(LookupGuard)]
