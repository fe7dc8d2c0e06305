"""The append-only ledger and the audit that proves it balances."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.calls.metrics import AUDIT_MISMATCHES
from vidivo.calls.models import CallSession, LedgerEntry, LedgerKind, SessionState
from vidivo.calls.terms import CallTerms
from vidivo.core.db import new_id


def record(
    db: AsyncSession,
    *,
    session: CallSession,
    window_number: int | None,
    kind: LedgerKind,
    amount_cents: int,
    provider_ref: str | None,
    idempotency_key: str,
    at: datetime,
) -> None:
    db.add(
        entry(
            session=session,
            window_number=window_number,
            kind=kind,
            amount_cents=amount_cents,
            provider_ref=provider_ref,
            idempotency_key=idempotency_key,
            at=at,
        )
    )


def entry(
    *,
    session: CallSession,
    window_number: int | None,
    kind: LedgerKind,
    amount_cents: int,
    provider_ref: str | None,
    idempotency_key: str,
    at: datetime,
) -> LedgerEntry:
    """An entry for a provider action, keyed by the action's own key and the entry's kind."""
    return LedgerEntry(
        id=new_id(),  # given here, not by the column's default: the engine may insert it in Core
        session_id=session.id,
        host_id=session.host_id,
        window_number=window_number,
        kind=kind,
        amount_cents=amount_cents,
        provider_ref=provider_ref,
        idempotency_key=f"{idempotency_key}:{kind}",
        created_at=at,
    )


async def totals(db: AsyncSession, session_id: str) -> dict[LedgerKind, int]:
    rows = await db.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.session_id == session_id)
        .group_by(LedgerEntry.kind)
    )
    found = {LedgerKind(kind): int(total or 0) for kind, total in rows}
    return {kind: found.get(kind, 0) for kind in LedgerKind}


@dataclass(frozen=True)
class AuditFinding:
    session_id: str
    problem: str


async def audit(db: AsyncSession) -> list[AuditFinding]:
    """For every ended session: captured == billed and released == held − captured."""
    findings = []
    ended = await db.scalars(select(CallSession).where(CallSession.state == SessionState.ENDED))
    for session in ended:
        sums = await totals(db, session.id)
        billed = CallTerms.of(session).bill_cents(
            session.banked_live_ms, went_live=session.went_live_at is not None
        )
        if sums[LedgerKind.CAPTURE] != billed:
            findings.append(
                AuditFinding(session.id, f"captured {sums[LedgerKind.CAPTURE]} != billed {billed}")
            )
        expected_release = sums[LedgerKind.HOLD] - sums[LedgerKind.CAPTURE]
        if sums[LedgerKind.RELEASE] != expected_release:
            findings.append(
                AuditFinding(
                    session.id,
                    f"released {sums[LedgerKind.RELEASE]} != held − captured {expected_release}",
                )
            )
    for state in (SessionState.DECLINED, SessionState.EXPIRED):
        for session in await db.scalars(select(CallSession).where(CallSession.state == state)):
            sums = await totals(db, session.id)
            if sums[LedgerKind.CAPTURE] or sums[LedgerKind.HOLD] != sums[LedgerKind.RELEASE]:
                findings.append(AuditFinding(session.id, f"{state} session kept money"))
    AUDIT_MISMATCHES.inc(len(findings))
    return findings


async def charged_and_refunded(
    db: AsyncSession, session_ids: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """Each call's captured and refunded cents, by session id, in one query."""
    ids = set(session_ids)
    if not ids:
        return {}
    rows = await db.execute(
        select(LedgerEntry.session_id, LedgerEntry.kind, func.sum(LedgerEntry.amount_cents))
        .where(
            LedgerEntry.session_id.in_(ids),
            LedgerEntry.kind.in_((LedgerKind.CAPTURE, LedgerKind.REFUND)),
        )
        .group_by(LedgerEntry.session_id, LedgerEntry.kind)
    )
    found: dict[str, dict[str, int]] = {}
    for session_id, kind, total in rows:
        found.setdefault(session_id, {})[kind] = int(total or 0)
    return {
        session_id: (
            found.get(session_id, {}).get(LedgerKind.CAPTURE, 0),
            found.get(session_id, {}).get(LedgerKind.REFUND, 0),
        )
        for session_id in ids
    }
