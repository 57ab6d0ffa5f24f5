"""The digest of a closed run: what changed for every tenant, and what needs an operator. Pure.

A run closes once (auditor/services/runclose.py); closing computes this document from the
committed snapshots and stores it with the run. Its canonical JSON (sorted keys, ASCII, compact)
is hashed like a snapshot's content, so a reader can tell the stored digest from an edited one.

Per tenant: its status and reasons, and ``summary``, the diff against the tenant's previous
committed snapshot with content, in exactly the shape of the diff API's ``summary``
(auditor/api/documents.py ``diff_summary``); ``None`` when either end has no content. Beside
the tenants: stale tenants (no complete snapshot in the last N slots), tenants that joined or
left the delegation, and poison messages since the previous run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DIGEST_FORMAT = "auditor-run-digest/1"

# Status order for "worst first": a failed tenant before an incomplete one before a complete one.
_STATUS_RANK = {"failed": 0, "pending": 1, "incomplete": 2, "complete": 3}


@dataclass(frozen=True, slots=True)
class TenantDigest:
    """One tenant of a closed run."""

    tenant_id: str
    name: str
    status: str  # complete | incomplete | failed | pending (nothing committed at close)
    reasons: tuple[str, ...]
    snapshot_id: str
    previous_snapshot_id: str | None
    summary: Mapping[str, Any] | None  # the diff API's summary shape; None: nothing to compare
    stale: bool = False
    # New High-severity security alerts since the previous snapshot (the diff's alert section);
    # None when either snapshot was taken before alerts were collected.
    new_high_alerts: int | None = None

    @property
    def regressions(self) -> int:
        return int(self.summary["posture"]["regressed"]) if self.summary else 0

    @property
    def improvements(self) -> int:
        return int(self.summary["posture"]["improved"]) if self.summary else 0

    @property
    def plan_downgrades(self) -> int:
        return len(self.summary["planDowngrades"]) if self.summary else 0

    @property
    def secure_score_drops(self) -> int:
        return len(self.summary["secureScoreDrops"]) if self.summary else 0

    @property
    def compliance_drops(self) -> int:
        """Standards whose comparable compliance fell."""
        if not self.summary:
            return 0
        return sum(
            1
            for c in self.summary["compliance"]
            if c.get("comparableDelta") is not None and c["comparableDelta"] < 0
        )

    @property
    def regressed(self) -> bool:
        """Anything got worse: a `tenant.regressed` event is sent for it."""
        return bool(
            self.regressions
            or self.plan_downgrades
            or self.secure_score_drops
            or self.compliance_drops
            or self.new_high_alerts
        )

    @property
    def severity(self) -> tuple[int, int, int, str]:
        """Sort key, worst first: status, then how much regressed, then the id."""
        weight = (
            self.regressions
            + 10 * (self.plan_downgrades + self.secure_score_drops + self.compliance_drops)
            + 10 * (self.new_high_alerts or 0)
        )
        return (_STATUS_RANK.get(self.status, 1), -weight, 0 if self.stale else 1, self.tenant_id)


@dataclass(frozen=True, slots=True)
class PoisonSummary:
    """Messages the queue gave up on (or refused) since the previous run."""

    count: int
    reasons: tuple[str, ...] = ()  # at most MAX_POISON_REASONS, oldest first


MAX_POISON_REASONS = 20


@dataclass(frozen=True, slots=True)
class RunDigest:
    slot: str
    closed_at: str
    closed_by: str  # last-job | sweep | inline
    deadline_passed: bool
    tenants: tuple[TenantDigest, ...]
    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    poison: PoisonSummary = field(default_factory=lambda: PoisonSummary(0))
    stale_slots: int = 3

    def worst_first(self) -> list[TenantDigest]:
        return sorted(self.tenants, key=lambda t: t.severity)

    @property
    def counts(self) -> dict[str, int]:
        """The digest's figures (the Azure Monitor metrics and the alert rules' inputs)."""
        statuses = [t.status for t in self.tenants]
        return {
            "tenants": len(self.tenants),
            "complete": statuses.count("complete"),
            "incomplete": statuses.count("incomplete"),
            "failed": statuses.count("failed"),
            "pending": statuses.count("pending"),
            "stale": sum(1 for t in self.tenants if t.stale),
            "regressed": sum(1 for t in self.tenants if t.regressed),
            "regressions": sum(t.regressions for t in self.tenants),
            "improvements": sum(t.improvements for t in self.tenants),
            "planDowngrades": sum(t.plan_downgrades for t in self.tenants),
            "secureScoreDrops": sum(t.secure_score_drops for t in self.tenants),
            "joined": len(self.joined),
            "left": len(self.left),
            "poison": self.poison.count,
        }

    @property
    def outcome(self) -> str:
        """complete when every tenant is; failed when none committed anything usable."""
        counts = self.counts
        if counts["tenants"] and counts["complete"] == counts["tenants"]:
            return "complete"
        if counts["tenants"] and counts["failed"] + counts["pending"] == counts["tenants"]:
            return "failed"
        return "partial" if counts["tenants"] else "empty"


def tenant_document(tenant: TenantDigest) -> dict[str, Any]:
    return {
        "tenantId": tenant.tenant_id,
        "name": tenant.name,
        "status": tenant.status,
        "reasons": list(tenant.reasons),
        "snapshotId": tenant.snapshot_id,
        "previousSnapshotId": tenant.previous_snapshot_id,
        "summary": dict(tenant.summary) if tenant.summary is not None else None,
        "stale": tenant.stale,
        "regressed": tenant.regressed,
        "newHighAlerts": tenant.new_high_alerts,
    }


def digest_document(
    digest: RunDigest, tenants: Iterable[TenantDigest] | None = None
) -> dict[str, Any]:
    """The digest as JSON (stored, served, sent), tenants worst first. `tenants` narrows the
    rows (a caller's grant); the figures are then recomputed over those rows only."""
    shown = digest.worst_first() if tenants is None else sorted(tenants, key=lambda t: t.severity)
    view = RunDigest(
        digest.slot,
        digest.closed_at,
        digest.closed_by,
        digest.deadline_passed,
        tuple(shown),
        digest.joined,
        digest.left,
        digest.poison,
        digest.stale_slots,
    )
    return {
        "format": DIGEST_FORMAT,
        "slot": digest.slot,
        "closedAt": digest.closed_at,
        "closedBy": digest.closed_by,
        "deadlinePassed": digest.deadline_passed,
        "outcome": view.outcome,
        "counts": view.counts,
        "staleSlots": digest.stale_slots,
        "tenants": [tenant_document(t) for t in shown],
        "joined": list(digest.joined),
        "left": list(digest.left),
        "poison": {"count": digest.poison.count, "reasons": list(digest.poison.reasons)},
    }


def digest_from_document(doc: Mapping[str, Any]) -> RunDigest:
    """Inverse of digest_document (for the whole digest)."""
    if doc.get("format") != DIGEST_FORMAT:
        raise ValueError(f"not a {DIGEST_FORMAT} document")
    tenants = tuple(
        TenantDigest(
            tenant_id=str(t["tenantId"]),
            name=str(t["name"]),
            status=str(t["status"]),
            reasons=tuple(str(r) for r in t["reasons"]),
            snapshot_id=str(t["snapshotId"]),
            previous_snapshot_id=t.get("previousSnapshotId"),
            summary=t.get("summary"),
            stale=bool(t.get("stale")),
            new_high_alerts=t.get("newHighAlerts"),
        )
        for t in doc["tenants"]
    )
    poison = doc.get("poison") or {}
    return RunDigest(
        slot=str(doc["slot"]),
        closed_at=str(doc["closedAt"]),
        closed_by=str(doc["closedBy"]),
        deadline_passed=bool(doc["deadlinePassed"]),
        tenants=tenants,
        joined=tuple(doc.get("joined") or ()),
        left=tuple(doc.get("left") or ()),
        poison=PoisonSummary(int(poison.get("count", 0)), tuple(poison.get("reasons") or ())),
        stale_slots=int(doc.get("staleSlots", 3)),
    )


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """The hashed bytes: keys sorted, compact separators, ASCII only (as snapshot lines)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def digest_hash(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()
