"""Is the evidence container's retention locked? What the data plane can say, and no more.

The template deploys the container's time-based retention policy unlocked; locking it is the
one manual step left (docs/deploy.md, "Lock the evidence retention"). Where each fact lives:

- Blob service (data plane), readable by the app's own identities (their blob roles include
  the container read action): Get Container Properties says whether the container *has* an
  immutability policy (``x-ms-has-immutability-policy``) and whether version-level
  immutability is on (``x-ms-immutable-storage-with-versioning-enabled``). It does not say
  whether the policy is locked.
- Each blob version reports its own policy (``x-ms-immutability-policy-mode``: Unlocked,
  Locked or Mutable, and its expiry), which a version takes from the container's default
  policy when it is written. This is reported from the newest listed evidence blob; a version
  written before the lock keeps the mode it was written with, so "Unlocked" there does not
  prove the container policy is still unlocked.
- The container policy's state (``properties.state``: Locked or Unlocked) is exposed only by
  Resource Manager (``.../containers/evidence/immutabilityPolicies/default``), which needs a
  control-plane read right on the storage account. Neither app identity has one (least
  privilege: data roles only), so the app does not ask; the line names the command an
  operator runs with their own rights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError

from auditor.adapters.blobs import EvidenceStore

ARM_CHECK = (
    "az storage container immutability-policy show --account-name <data account> "
    "--container-name {container} --query state"
)


@dataclass(frozen=True, slots=True)
class RetentionStatus:
    """What the blob service says about the evidence container's retention."""

    container: str
    has_policy: bool | None  # None: could not be read
    versioned_worm: bool | None
    blob_mode: str | None  # Locked / Unlocked / Mutable, as the a stored blob reports it
    problem: str | None = None

    @property
    def locked(self) -> bool | None:
        """True only when the platform says so; False when there is no policy to lock; None
        when the data plane cannot tell."""
        if self.has_policy is False:
            return False
        if self.blob_mode and self.blob_mode.lower() == "locked":
            return True
        return None

    def line(self) -> str:
        if self.problem is not None:
            return f"retention: {self.container}: could not be read ({self.problem})"
        if not self.has_policy:
            return (
                f"retention: {self.container} has NO immutability policy: evidence is not "
                "write-once here (local storage, or see docs/deploy.md)"
            )
        mode = self.blob_mode or "none reported"
        if self.locked:
            return f"retention: {self.container} has a time-based policy; a stored blob: Locked"
        return (
            f"retention: {self.container} has a time-based policy; lock state NOT confirmed "
            f"(a stored blob: {mode}); Resource Manager tells: "
            + ARM_CHECK.format(container=self.container)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "hasImmutabilityPolicy": self.has_policy,
            "versionLevelImmutability": self.versioned_worm,
            "storedBlobPolicyMode": self.blob_mode,
            "locked": self.locked,
            "problem": self.problem,
        }


def retention_status(evidence: EvidenceStore) -> RetentionStatus:
    """The evidence container's retention as the blob service reports it (never raises for a
    storage error: the answer then says it could not be read)."""
    container = evidence.container
    try:
        properties = container.get_container_properties()
        # The first listed blob only: one small page, whatever the container holds.
        blobs = container.list_blobs(include=["immutabilitypolicy"], results_per_page=1)
        first: Any = next(iter(blobs.by_page()), [])
        sample = next(iter(first), None)
        policy = getattr(sample, "immutability_policy", None)
        mode = getattr(policy, "policy_mode", None) if policy is not None else None
    except AzureError as exc:
        return RetentionStatus(evidence.container_name, None, None, None, type(exc).__name__)
    return RetentionStatus(
        container=evidence.container_name,
        has_policy=bool(properties.has_immutability_policy),
        versioned_worm=bool(properties.immutable_storage_with_versioning_enabled),
        blob_mode=str(mode) if mode else None,
    )
