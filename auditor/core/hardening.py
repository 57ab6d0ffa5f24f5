"""Hardening coverage: which recommendations count as hardening, and their per-subscription roll-up.

The catalogue is data (assessment key → feature). Display names, severity and remediation come
from Defender's assessment metadata at run time, so they stay what Microsoft publishes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auditor.core.model import HardeningCoverage, HardeningStatus, RecommendationMetadata


@dataclass(frozen=True, slots=True)
class HardeningFeature:
    key: str
    feature: str
    fallback_name: str
    retired: bool = False


JIT_KEY = "805651bc-6ecd-4c73-9b55-97a19d0582d4"

CATALOGUE: tuple[HardeningFeature, ...] = (
    HardeningFeature(
        JIT_KEY,
        "just-in-time VM access",
        "Management ports of virtual machines should be protected with just-in-time network "
        "access control",
    ),
    HardeningFeature(
        "83f577bd-a1b6-b7e1-0891-12ca19d1e6df",
        "endpoint protection",
        "Install endpoint protection solution on virtual machines",
    ),
    HardeningFeature(
        "21300918-b2e3-0346-785f-c77ff57d243b",
        "endpoint protection (scale sets)",
        "Install endpoint protection solution on virtual machine scale sets",
    ),
    HardeningFeature(
        "4ab6e3c5-74dd-8b35-9ab9-f61b30875b27",
        "system updates",
        "System updates should be installed on your machines",
    ),
    HardeningFeature(
        "ffff0522-1e88-47fc-8382-2a80ba848f5d",
        "vulnerability assessment",
        "Machines should have a vulnerability assessment solution",
    ),
    HardeningFeature(
        "d57a4221-a804-52ca-3dea-768702e4bfa4",
        "disk encryption",
        "Virtual machines should encrypt temp disks, caches, and data flows between Compute and "
        "Storage resources",
    ),
    HardeningFeature(
        "6240402e-f77c-46fa-9060-a7ce53997754",
        "MFA for owners",
        "Accounts with owner permissions on Azure resources should be MFA enabled",
    ),
    # Retired by Microsoft in August 2024: reported as retired, never as passed or failed.
    HardeningFeature(
        "35f45c95-27cf-4e52-891f-8390d1de5828",
        "adaptive application controls",
        "Adaptive application controls for defining safe applications should be enabled on "
        "your machines",
        retired=True,
    ),
    HardeningFeature(
        "f9f0eed0-f143-47bf-b856-671ea2eeed62",
        "adaptive network hardening",
        "Adaptive network hardening recommendations should be applied on internet facing "
        "virtual machines",
        retired=True,
    ),
)

BY_KEY: dict[str, HardeningFeature] = {feature.key: feature for feature in CATALOGUE}
HARDENING_KEYS: tuple[str, ...] = tuple(BY_KEY)


def rollup(
    subscriptions: Iterable[str],
    recommendations: Iterable[tuple[str, str, str]],
    metadata: Mapping[str, RecommendationMetadata],
    jit_covered_vms: Mapping[str, int] | None = None,
) -> list[HardeningCoverage]:
    """Per subscription and catalogue entry: healthy / unhealthy / not-applicable resources.

    A recommendation with no rows in a subscription is ``missing`` (never passed); a retired
    feature is ``retired`` with no counts, whatever rows Defender still returns for it.
    """
    counts: dict[tuple[str, str], Counter[str]] = {}
    for sub, key, code in recommendations:
        if key in BY_KEY:
            counts.setdefault((sub, key), Counter())[code] += 1
    out: list[HardeningCoverage] = []
    for sub in sorted(set(subscriptions)):
        for feature in CATALOGUE:
            meta = metadata.get(feature.key)
            seen = counts.get((sub, feature.key))
            if feature.retired:
                status = HardeningStatus.RETIRED
                seen = None
            elif seen is None:
                status = HardeningStatus.MISSING
            else:
                status = HardeningStatus.ASSESSED
            jit = None
            if feature.key == JIT_KEY and jit_covered_vms is not None:
                jit = jit_covered_vms.get(sub)  # None: the policies could not be read
            out.append(
                HardeningCoverage(
                    subscription_id=sub,
                    recommendation=feature.key,
                    feature=feature.feature,
                    display_name=meta.display_name if meta else feature.fallback_name,
                    status=status,
                    healthy=seen["Healthy"] if seen else 0,
                    unhealthy=seen["Unhealthy"] if seen else 0,
                    not_applicable=seen["NotApplicable"] if seen else 0,
                    severity=meta.severity if meta else "",
                    remediation=meta.remediation if meta else "",
                    jit_covered_vms=jit,
                )
            )
    return out
