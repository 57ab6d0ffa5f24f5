"""Static catalog of the synthetic estate: standards, controls, recommendations, plans.

Everything here is independent of the seed: like Defender for Cloud itself, a standard's controls
and the assessments that map to them are the same in every tenant. Per-tenant variation (which
standards are assigned, states, resources) lives in ``estate.py``.

The nine recommendation keys the auditor hardens against are Microsoft's real assessment keys.
The other recommendation keys are synthetic (uuid5 of the display name) and say so nowhere else:
do not look them up in Azure.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

# --- well-known ids --------------------------------------------------------------------------

READER_ROLE_ID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
SECURITY_READER_ROLE_ID = "39bc4728-0917-49c7-9d2c-d95423bc2eb4"

KEY_JIT = "805651bc-6ecd-4c73-9b55-97a19d0582d4"
KEY_EP_VM = "83f577bd-a1b6-b7e1-0891-12ca19d1e6df"
KEY_EP_VMSS = "21300918-b2e3-0346-785f-c77ff57d243b"
KEY_UPDATES = "4ab6e3c5-74dd-8b35-9ab9-f61b30875b27"
KEY_VA = "ffff0522-1e88-47fc-8382-2a80ba848f5d"
KEY_DISK_ENC = "d57a4221-a804-52ca-3dea-768702e4bfa4"
KEY_MFA_OWNER = "6240402e-f77c-46fa-9060-a7ce53997754"
KEY_AAC = "35f45c95-27cf-4e52-891f-8390d1de5828"
KEY_ANH = "f9f0eed0-f143-47bf-b856-671ea2eeed62"
KEY_CLOSE_MGMT_PORTS = "bc303248-3d14-44c2-96a0-55f5c326b5fe"

RETIRED_KEYS = (KEY_AAC, KEY_ANH)

_NS = uuid.UUID("6f1d0c3e-2a51-4c7e-9d0b-5a3c1e2f4b60")


def synthetic_key(name: str) -> str:
    """Stable synthetic GUID for a catalog name."""
    return str(uuid.uuid5(_NS, name))


# --- recommendations (assessment metadata) ---------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    key: str
    display_name: str
    description: str
    remediation: str
    severity: str  # High / Medium / Low
    categories: tuple[str, ...]
    user_impact: str
    implementation_effort: str
    threats: tuple[str, ...]
    policy_definition_id: str
    applies_to: str  # vm / vmss / subscription / a resource kind of RESOURCE_TYPES / none


_THREATS = (
    "accountBreach",
    "dataExfiltration",
    "dataSpillage",
    "maliciousInsider",
    "elevationOfPrivilege",
    "threatResistance",
    "missingCoverage",
    "denialOfService",
)


def _rec(
    key: str,
    name: str,
    applies_to: str,
    severity: str,
    category: str,
    description: str,
    remediation: str,
) -> Recommendation:
    rng = random.Random("rec|" + key)
    threats = tuple(sorted(rng.sample(_THREATS, rng.randint(1, 3))))
    return Recommendation(
        key=key,
        display_name=name,
        description=description,
        remediation=remediation,
        severity=severity,
        categories=(category,),
        user_impact=rng.choice(("Low", "Moderate", "High")),
        implementation_effort=rng.choice(("Low", "Moderate", "High")),
        threats=threats,
        policy_definition_id="/providers/Microsoft.Authorization/policyDefinitions/"
        + synthetic_key("policy|" + key),
        applies_to=applies_to,
    )


HARDENING: tuple[Recommendation, ...] = (
    _rec(
        KEY_JIT,
        "Management ports of virtual machines should be protected with just-in-time network "
        "access control",
        "vm",
        "High",
        "Networking",
        "Defender for Cloud has identified some overly-permissive inbound rules for management "
        "ports in your Network Security Group. Enable just-in-time access control to protect "
        "your VM from internet-based brute-force attacks.",
        "Enable JIT on the virtual machines from the Just-in-time VM access page.",
    ),
    _rec(
        KEY_EP_VM,
        "Install endpoint protection solution on virtual machines",
        "vm",
        "High",
        "Compute",
        "Install an endpoint protection solution on your virtual machines, to protect them from "
        "threats and vulnerabilities.",
        "Install an endpoint protection solution on the listed virtual machines.",
    ),
    _rec(
        KEY_EP_VMSS,
        "Install endpoint protection solution on virtual machine scale sets",
        "vmss",
        "Medium",
        "Compute",
        "Install an endpoint protection solution on your virtual machines scale sets, to protect "
        "them from threats and vulnerabilities.",
        "Turn on antimalware in your virtual machine scale set.",
    ),
    _rec(
        KEY_UPDATES,
        "System updates should be installed on your machines",
        "vm",
        "High",
        "Compute",
        "Install missing system security and critical updates to secure your machines.",
        "Install the missing updates from the recommendation details page.",
    ),
    _rec(
        KEY_VA,
        "Machines should have a vulnerability assessment solution",
        "vm",
        "Medium",
        "Compute",
        "Defender for Cloud regularly checks your connected machines to ensure they're running "
        "vulnerability assessment tools.",
        "Deploy the integrated vulnerability assessment solution to the listed machines.",
    ),
    _rec(
        KEY_DISK_ENC,
        "Virtual machines should encrypt temp disks, caches, and data flows between Compute and "
        "Storage resources",
        "vm",
        "High",
        "Data",
        "By default, a virtual machine's OS and data disks are encrypted-at-rest using "
        "platform-managed keys; temp disks, data caches and data flowing between compute and "
        "storage aren't encrypted.",
        "Enable encryption at host or Azure Disk Encryption on the listed virtual machines.",
    ),
    _rec(
        KEY_MFA_OWNER,
        "Accounts with owner permissions on Azure resources should be MFA enabled",
        "subscription",
        "High",
        "IdentityAndAccess",
        "Multi-Factor Authentication (MFA) should be enabled for all subscription accounts with "
        "owner permissions to prevent a breach of accounts or resources.",
        "Enable MFA for the listed accounts with a Conditional Access policy.",
    ),
    _rec(
        KEY_AAC,
        "Adaptive application controls for defining safe applications should be enabled on your "
        "machines",
        "vm",
        "High",
        "Compute",
        "Enable application controls to define the list of known-safe applications running on "
        "your machines.",
        "Configure an adaptive application control group for the listed machines.",
    ),
    _rec(
        KEY_ANH,
        "Adaptive network hardening recommendations should be applied on internet facing virtual "
        "machines",
        "vm",
        "High",
        "Networking",
        "Defender for Cloud analyzes the internet traffic communication patterns of Azure virtual "
        "machines and determines whether the existing NSG rules are overly permissive.",
        "Apply the recommended NSG rules from the adaptive network hardening page.",
    ),
    _rec(
        KEY_CLOSE_MGMT_PORTS,
        "Close management ports on your virtual machines",
        "vm",
        "Medium",
        "Networking",
        "Open remote management ports expose your VM to a high level of risk from internet-based "
        "attacks that attempt to brute force credentials to gain admin access to the machine.",
        "Edit the inbound rules of the virtual machines to restrict access to specific source "
        "ranges.",
    ),
)

# Synthetic recommendations: resource kinds x requirements ("a handful of other keys" for
# resources, plus a larger pool that only the regulatory compliance mapping uses).
_RESOURCE_KINDS = (
    ("storage", "Storage accounts", "Data"),
    ("keyvault", "Key vaults", "Data"),
    ("sql", "SQL servers", "Data"),
    ("appservice", "App Service apps", "AppServices"),
    ("functionapp", "Function apps", "AppServices"),
    ("aks", "Kubernetes clusters", "Container"),
    ("acr", "Container registries", "Container"),
    ("cosmosdb", "Azure Cosmos DB accounts", "Data"),
    ("eventhub", "Event Hub namespaces", "IoT"),
    ("redis", "Azure Cache for Redis", "Data"),
    ("vnet", "Virtual networks", "Networking"),
    ("logicapp", "Logic apps", "AppServices"),
)
# Resource provider type and name prefix of each kind (the `large` estate's extra resources).
RESOURCE_TYPES: dict[str, tuple[str, str]] = {
    "storage": ("Microsoft.Storage/storageAccounts", "st"),
    "keyvault": ("Microsoft.KeyVault/vaults", "kv"),
    "sql": ("Microsoft.Sql/servers", "sql"),
    "appservice": ("Microsoft.Web/sites", "app"),
    "functionapp": ("Microsoft.Web/sites", "func"),
    "aks": ("Microsoft.ContainerService/managedClusters", "aks"),
    "acr": ("Microsoft.ContainerRegistry/registries", "acr"),
    "cosmosdb": ("Microsoft.DocumentDB/databaseAccounts", "cosmos"),
    "eventhub": ("Microsoft.EventHub/namespaces", "evh"),
    "redis": ("Microsoft.Cache/redis", "redis"),
    "vnet": ("Microsoft.Network/virtualNetworks", "vnet"),
    "logicapp": ("Microsoft.Logic/workflows", "logic"),
}

_REQUIREMENTS = (
    ("should use private link", "Medium", "Private endpoints keep traffic on the backbone."),
    ("should disable public network access", "Medium", "Public access widens exposure."),
    ("should have diagnostic logs enabled", "Low", "Logs are needed for investigations."),
    ("should use customer-managed keys for encryption", "Low", "Keys you control at rest."),
    ("should restrict network access", "Medium", "Limit access to allowed networks."),
    ("should use TLS 1.2 or newer", "High", "Older TLS versions have known weaknesses."),
    ("should have Microsoft Entra authentication enabled", "High", "Centralise identities."),
    ("should have soft delete and purge protection enabled", "Medium", "Recover deletions."),
    ("should have Defender plan enabled", "High", "Threat protection for the resource."),
    ("should have resource locks configured", "Low", "Prevent accidental deletion."),
    ("should have geo-redundant backup enabled", "Low", "Survive regional outages."),
    ("should use managed identities", "Medium", "Avoid stored credentials."),
    ("should have local authentication methods disabled", "Medium", "Entra-only access."),
    ("should have vulnerability findings resolved", "High", "Fix known vulnerabilities."),
    ("should have auditing enabled", "Low", "Keep an audit trail."),
    ("should enforce HTTPS only", "Medium", "Encrypt data in transit."),
)


def _synthetic_recommendations() -> tuple[Recommendation, ...]:
    out = []
    for applies, kind, category in _RESOURCE_KINDS:
        for req, severity, why in _REQUIREMENTS:
            name = f"{kind} {req}"
            key = synthetic_key("rec|" + name)
            out.append(
                _rec(
                    key,
                    name,
                    applies,
                    severity,
                    category,
                    f"{why} Applies to {kind.lower()}.",
                    f"Update the configuration of the listed {kind.lower()}.",
                )
            )
    return tuple(out)


SYNTHETIC: tuple[Recommendation, ...] = _synthetic_recommendations()
RECOMMENDATIONS: tuple[Recommendation, ...] = HARDENING + SYNTHETIC
RECOMMENDATION_BY_KEY: dict[str, Recommendation] = {r.key: r for r in RECOMMENDATIONS}

# Recommendations evaluated per resource in ``microsoft.security/assessments`` rows.
VM_KEYS = (
    KEY_JIT,
    KEY_EP_VM,
    KEY_UPDATES,
    KEY_VA,
    KEY_DISK_ENC,
    KEY_AAC,
    KEY_ANH,
    KEY_CLOSE_MGMT_PORTS,
)
VMSS_KEYS = (KEY_EP_VMSS,)
SUBSCRIPTION_KEYS = (KEY_MFA_OWNER,)


def keys_for(applies_to: str, limit: int = 4) -> tuple[str, ...]:
    """The first ``limit`` synthetic recommendation keys of a resource kind."""
    return tuple(r.key for r in SYNTHETIC if r.applies_to == applies_to)[:limit]


STORAGE_KEYS = keys_for("storage")
KEYVAULT_KEYS = keys_for("keyvault")
SQL_KEYS = keys_for("sql")
# Every synthetic recommendation of a kind: those the `large` estate evaluates on its extras.
KIND_KEYS: dict[str, tuple[str, ...]] = {
    kind: keys_for(kind, len(_REQUIREMENTS)) for kind in RESOURCE_TYPES
}

# --- regulatory compliance standards ----------------------------------------------------------

MCSB = "Microsoft-cloud-security-benchmark"
PCI = "PCI-DSS-4"
ISO = "ISO-27001-2013"
NIST = "NIST-SP-800-53-R5"

_MCSB_CONTROLS = {
    "NS": (
        "Establish network segmentation boundaries",
        "Secure cloud native services with network controls",
        "Deploy firewall at the edge of enterprise network",
        "Deploy intrusion detection/intrusion prevention systems (IDS/IPS)",
        "Deploy DDOS protection",
        "Deploy web application firewall",
        "Simplify network security configuration",
        "Detect and disable insecure services and protocols",
        "Connect on-premises or cloud network privately",
        "Ensure Domain Name System (DNS) security",
    ),
    "IM": (
        "Use centralized identity and authentication system",
        "Protect identity and authentication systems",
        "Manage application identities securely and automatically",
        "Authenticate server and services",
        "Use single sign-on (SSO) for application access",
        "Use strong authentication controls",
        "Restrict resource access based on conditions",
        "Restrict the exposure of credentials and secrets",
        "Secure user access to existing applications",
    ),
    "PA": (
        "Separate and limit highly privileged/administrative users",
        "Avoid standing access for user accounts and permissions",
        "Manage lifecycle of identities and entitlements",
        "Review and reconcile user access regularly",
        "Set up emergency access",
        "Use privileged access workstations",
        "Follow just enough administration (least privilege) principle",
        "Determine access process for cloud provider support",
    ),
    "DP": (
        "Discover, classify, and label sensitive data",
        "Monitor anomalies and threats targeting sensitive data",
        "Encrypt sensitive data in transit",
        "Enable data at rest encryption by default",
        "Use customer-managed key option in data at rest encryption when required",
        "Use a secure key management process",
        "Use a secure certificate management process",
        "Ensure security of key and certificate repository",
    ),
    "AM": (
        "Track asset inventory and their risks",
        "Use only approved services",
        "Ensure security of asset lifecycle management",
        "Limit access to asset management",
        "Use only approved applications in virtual machine",
    ),
    "LT": (
        "Enable threat detection capabilities",
        "Enable threat detection for identity and access management",
        "Enable logging for security investigation",
        "Enable network logging for security investigation",
        "Centralize security log management and analysis",
        "Configure log storage retention",
        "Use approved time synchronization sources",
    ),
    "IR": (
        "Preparation - update incident response plan and handling process",
        "Preparation - setup incident notification",
        "Detection and analysis - create incidents based on high-quality alerts",
        "Detection and analysis - investigate an incident",
        "Detection and analysis - prioritize incidents",
        "Containment, eradication and recovery - automate the incident handling",
        "Post-incident activity - conduct lesson learned and retain evidence",
    ),
    "PV": (
        "Define and establish secure configurations",
        "Audit and enforce secure configurations",
        "Define and establish secure configurations for compute resources",
        "Audit and enforce secure configurations for compute resources",
        "Perform vulnerability assessments",
        "Rapidly and automatically remediate vulnerabilities",
        "Conduct regular red team operations",
    ),
    "ES": (
        "Use Endpoint Detection and Response (EDR)",
        "Use modern anti-malware software",
        "Ensure anti-malware software and signatures are updated",
    ),
    "BR": (
        "Ensure regular automated backups",
        "Protect backup and recovery data",
        "Monitor backups",
        "Regularly test backup",
    ),
    "DS": (
        "Conduct security configuration review",
        "Secure software supply chain",
        "Secure DevOps infrastructure",
        "Integrate static application security testing into DevOps pipeline",
        "Integrate dynamic application security testing into DevOps pipeline",
        "Enforce security of workload throughout DevOps lifecycle",
        "Enforce logging and monitoring in DevOps",
    ),
    "GS": (
        "Align organization roles, responsibilities and accountabilities",
        "Define and implement enterprise segmentation/separation of duties strategy",
        "Define and implement data protection strategy",
        "Define and implement network security strategy",
        "Define and implement security posture management strategy",
        "Define and implement identity and privileged access strategy",
        "Define and implement logging, threat detection and incident response strategy",
        "Define and implement backup and recovery strategy",
        "Define and implement endpoint security strategy",
        "Define and implement DevOps security strategy",
    ),
}
# Controls that have no automated assessment in Defender (manual attestation only).
_MCSB_MANUAL_FAMILIES = {"IR", "GS", "DS"}
_MCSB_MANUAL = {"PA.5", "PA.6", "PA.8", "PV.7", "AM.4", "DP.1"}

_PCI_FAMILIES = {
    "1": "Network security controls are installed and maintained",
    "2": "Secure configurations are applied to all system components",
    "3": "Stored account data is protected",
    "4": "Cardholder data is protected with strong cryptography during transmission",
    "5": "All systems and networks are protected from malicious software",
    "6": "Secure systems and software are developed and maintained",
    "7": "Access to system components and cardholder data is restricted by business need to know",
    "8": "Users are identified and access to system components is authenticated",
    "10": "All access to system components and cardholder data is logged and monitored",
    "11": "Security of systems and networks is tested regularly",
    "12": "Information security is supported with organizational policies and programs",
}
_PCI_REQUIREMENTS = [
    "1.1.1",
    "1.2.1",
    "1.2.5",
    "1.2.7",
    "1.3.1",
    "1.3.2",
    "1.4.1",
    "1.4.2",
    "1.5.1",
    "2.2.1",
    "2.2.4",
    "2.2.5",
    "2.2.7",
    "3.4.1",
    "3.5.1",
    "3.6.1",
    "4.2.1",
    "4.2.2",
    "5.2.1",
    "5.2.2",
    "5.3.1",
    "5.3.2",
    "5.4.1",
    "6.2.1",
    "6.3.1",
    "6.3.3",
    "6.4.1",
    "6.4.2",
    "7.2.1",
    "7.2.2",
    "7.2.5",
    "8.2.1",
    "8.2.2",
    "8.3.1",
    "8.3.6",
    "8.4.1",
    "8.4.2",
    "8.6.1",
    "10.2.1",
    "10.2.2",
    "10.3.1",
    "10.4.1",
    "10.5.1",
    "10.7.1",
    "11.3.1",
    "11.4.1",
    "11.5.1",
    "12.1.1",
    "12.3.1",
    "12.10.1",
]
_PCI_MANUAL = {"12.1.1", "12.3.1", "12.10.1", "6.2.1", "11.4.1"}

_ISO_CONTROLS = (
    ("A.5.1.1", "Policies for information security"),
    ("A.6.1.2", "Segregation of duties"),
    ("A.8.1.1", "Inventory of assets"),
    ("A.8.2.1", "Classification of information"),
    ("A.9.1.2", "Access to networks and network services"),
    ("A.9.2.3", "Management of privileged access rights"),
    ("A.9.2.5", "Review of user access rights"),
    ("A.9.4.2", "Secure log-on procedures"),
    ("A.9.4.3", "Password management system"),
    ("A.10.1.1", "Policy on the use of cryptographic controls"),
    ("A.10.1.2", "Key management"),
    ("A.12.1.2", "Change management"),
    ("A.12.2.1", "Controls against malware"),
    ("A.12.3.1", "Information backup"),
    ("A.12.4.1", "Event logging"),
    ("A.12.4.3", "Administrator and operator logs"),
    ("A.12.4.4", "Clock synchronisation"),
    ("A.12.5.1", "Installation of software on operational systems"),
    ("A.12.6.1", "Management of technical vulnerabilities"),
    ("A.12.6.2", "Restrictions on software installation"),
    ("A.13.1.1", "Network controls"),
    ("A.13.1.3", "Segregation in networks"),
    ("A.13.2.1", "Information transfer policies and procedures"),
    ("A.14.1.2", "Securing application services on public networks"),
    ("A.14.1.3", "Protecting application services transactions"),
    ("A.14.2.5", "Secure system engineering principles"),
    ("A.16.1.2", "Reporting information security events"),
    ("A.17.1.2", "Implementing information security continuity"),
    ("A.18.1.3", "Protection of records"),
    ("A.18.1.4", "Privacy and protection of personally identifiable information"),
    ("A.18.2.3", "Technical compliance review"),
)
_ISO_MANUAL = {"A.5.1.1", "A.6.1.2", "A.16.1.2", "A.17.1.2"}

_NIST_CONTROLS = (
    ("AC-2", "Account Management"),
    ("AC-2(1)", "Automated System Account Management"),
    ("AC-2(7)", "Privileged User Accounts"),
    ("AC-2(12)", "Account Monitoring for Atypical Usage"),
    ("AC-3", "Access Enforcement"),
    ("AC-4", "Information Flow Enforcement"),
    ("AC-5", "Separation of Duties"),
    ("AC-6", "Least Privilege"),
    ("AC-6(7)", "Review of User Privileges"),
    ("AC-17", "Remote Access"),
    ("AC-17(1)", "Monitoring and Control"),
    ("AU-2", "Event Logging"),
    ("AU-6", "Audit Record Review, Analysis, and Reporting"),
    ("AU-11", "Audit Record Retention"),
    ("AU-12", "Audit Record Generation"),
    ("CM-6", "Configuration Settings"),
    ("CM-7", "Least Functionality"),
    ("CM-8", "System Component Inventory"),
    ("CP-9", "System Backup"),
    ("IA-2", "Identification and Authentication (Organizational Users)"),
    ("IA-2(1)", "Multi-factor Authentication to Privileged Accounts"),
    ("IA-5", "Authenticator Management"),
    ("RA-5", "Vulnerability Monitoring and Scanning"),
    ("SC-7", "Boundary Protection"),
    ("SC-7(3)", "Access Points"),
    ("SC-8", "Transmission Confidentiality and Integrity"),
    ("SC-8(1)", "Cryptographic Protection"),
    ("SC-12", "Cryptographic Key Establishment and Management"),
    ("SC-28", "Protection of Information at Rest"),
    ("SI-2", "Flaw Remediation"),
    ("SI-3", "Malicious Code Protection"),
    ("SI-4", "System Monitoring"),
    ("SI-4(4)", "Inbound and Outbound Communications Traffic"),
)
_NIST_MANUAL = {"AC-5", "CP-9", "AU-11"}


@dataclass(frozen=True)
class Control:
    name: str
    description: str
    assessment_keys: tuple[str, ...]  # empty = manual (no automated assessment)


@dataclass(frozen=True)
class Standard:
    name: str
    display_name: str
    security_standard_id: str  # GUID of the 2024-08-01 securityStandards resource
    controls: tuple[Control, ...]


# Hardening keys map to controls where Defender maps them; everything else is drawn at random
# from the recommendation pool (fixed seed, so the mapping is static).
_PREFERRED = {
    (MCSB, "NS.1"): (KEY_JIT, KEY_ANH),
    (MCSB, "NS.7"): (KEY_ANH,),
    (MCSB, "PA.7"): (KEY_JIT,),
    (MCSB, "IM.6"): (KEY_MFA_OWNER,),
    (MCSB, "ES.2"): (KEY_EP_VM, KEY_EP_VMSS),
    (MCSB, "ES.1"): (KEY_EP_VM,),
    (MCSB, "PV.6"): (KEY_UPDATES,),
    (MCSB, "PV.5"): (KEY_VA,),
    (MCSB, "DP.4"): (KEY_DISK_ENC,),
    (MCSB, "AM.5"): (KEY_AAC,),
    (PCI, "1.3.1"): (KEY_JIT, KEY_CLOSE_MGMT_PORTS),
    (PCI, "5.2.1"): (KEY_EP_VM,),
    (PCI, "6.3.3"): (KEY_UPDATES,),
    (PCI, "8.4.1"): (KEY_MFA_OWNER,),
    (PCI, "11.3.1"): (KEY_VA,),
    (ISO, "A.12.6.1"): (KEY_VA, KEY_UPDATES),
    (ISO, "A.9.2.3"): (KEY_MFA_OWNER,),
    (ISO, "A.12.2.1"): (KEY_EP_VM,),
    (ISO, "A.13.1.1"): (KEY_JIT,),
    (NIST, "AC-2"): (KEY_MFA_OWNER,),
    (NIST, "IA-2(1)"): (KEY_MFA_OWNER,),
    (NIST, "SC-7"): (KEY_JIT, KEY_ANH, KEY_CLOSE_MGMT_PORTS),
    (NIST, "SI-2"): (KEY_UPDATES,),
    (NIST, "SI-3"): (KEY_EP_VM, KEY_EP_VMSS),
    (NIST, "RA-5"): (KEY_VA,),
    (NIST, "SC-28"): (KEY_DISK_ENC,),
}

# average automated assessments per control, tuned so that a subscription with the benchmark
# and two other standards has about 1,000 compliance assessment rows.
_PER_CONTROL = {MCSB: (4, 9), PCI: (5, 12), ISO: (6, 14), NIST: (6, 14)}


def _build_standard(name: str, display: str, controls: list[tuple[str, str, bool]]) -> Standard:
    rng = random.Random("standard|" + name)
    pool = [r.key for r in RECOMMENDATIONS]
    lo, hi = _PER_CONTROL[name]
    built = []
    for cname, desc, manual in controls:
        if manual:
            built.append(Control(cname, desc, ()))
            continue
        preferred = list(_PREFERRED.get((name, cname), ()))
        n = rng.randint(lo, hi)
        extra = [k for k in rng.sample(pool, n + len(preferred)) if k not in preferred]
        keys = tuple(preferred + extra[: max(0, n - len(preferred))])
        built.append(Control(cname, desc, keys))
    return Standard(name, display, synthetic_key("securityStandard|" + name), tuple(built))


def _mcsb() -> Standard:
    controls = []
    for family, titles in _MCSB_CONTROLS.items():
        for i, title in enumerate(titles, 1):
            cname = f"{family}.{i}"
            manual = family in _MCSB_MANUAL_FAMILIES or cname in _MCSB_MANUAL
            controls.append((cname, title, manual))
    return _build_standard(MCSB, "Microsoft cloud security benchmark", controls)


def _pci() -> Standard:
    controls = []
    for req in _PCI_REQUIREMENTS:
        family = req.split(".")[0]
        controls.append((req, f"{_PCI_FAMILIES[family]} ({req})", req in _PCI_MANUAL))
    return _build_standard(PCI, "PCI DSS v4", controls)


def _iso() -> Standard:
    controls = [(n, d, n in _ISO_MANUAL) for n, d in _ISO_CONTROLS]
    return _build_standard(ISO, "ISO 27001:2013", controls)


def _nist() -> Standard:
    controls = [(n, d, n in _NIST_MANUAL) for n, d in _NIST_CONTROLS]
    return _build_standard(NIST, "NIST SP 800-53 Rev. 5", controls)


STANDARDS: tuple[Standard, ...] = (_mcsb(), _pci(), _iso(), _nist())
STANDARD_BY_NAME: dict[str, Standard] = {s.name: s for s in STANDARDS}
OPTIONAL_STANDARDS = (PCI, ISO, NIST)  # the benchmark is on every subscription


def standard_keys(name: str) -> frozenset[str]:
    return frozenset(k for c in STANDARD_BY_NAME[name].controls for k in c.assessment_keys)


def standard_row_count(name: str) -> int:
    return sum(len(c.assessment_keys) for c in STANDARD_BY_NAME[name].controls)


def manual_key(standard: str, control: str) -> str:
    """Assessment key of the manual attestation of a control without automated assessments."""
    return synthetic_key(f"manual|{standard}|{control}")


def manual_controls(standard: str) -> tuple[Control, ...]:
    return tuple(c for c in STANDARD_BY_NAME[standard].controls if not c.assessment_keys)


# Every key that has tenant-level metadata (REST assessmentMetadata).
METADATA_KEYS: tuple[str, ...] = tuple(sorted(RECOMMENDATION_BY_KEY))

# --- secure score controls (fixture names and GUIDs where the fixture has them) --------------

SECURE_SCORE_CONTROLS: tuple[tuple[str, str, int], ...] = (
    ("a9909064-42b4-4d34-8143-275477afe18b", "Protect applications against DDoS attacks", 2),
    ("34a42fb3-e6db-409c-b56b-7b1db6b8aee0", "Enable MFA", 10),
    ("76763537-9feb-42d3-b4f4-78c01117be80", "Implement security best practices", 0),
    ("4db8d6cf-075b-4149-a813-da09ca2ae120", "Enable Advanced Threat Protection", 0),
    ("27b24961-75ba-4fe4-8909-97286d5dd5ee", "Enable auditing and logging", 1),
    ("2d85f639-0bea-4a4a-b6c6-608952a1414a", "Manage access and permissions", 4),
    ("99fc8df2-e0f5-40f8-9415-a7f7ca948b5a", "Remediate security configurations", 4),
    (synthetic_key("score|Secure management ports"), "Secure management ports", 8),
    (synthetic_key("score|Remediate vulnerabilities"), "Remediate vulnerabilities", 6),
    (synthetic_key("score|Apply system updates"), "Apply system updates", 6),
    (synthetic_key("score|Enable encryption at rest"), "Enable encryption at rest", 4),
    (synthetic_key("score|Encrypt data in transit"), "Encrypt data in transit", 4),
    (
        synthetic_key("score|Restrict unauthorized network access"),
        "Restrict unauthorized network access",
        4,
    ),
    (synthetic_key("score|Enable endpoint protection"), "Enable endpoint protection", 2),
)

# --- Defender plans (ListPricings_example.json) ----------------------------------------------

# name, default subPlan, deprecated/replacedBy, extensions when Standard
PLANS: tuple[tuple[str, str | None, tuple[str, ...] | None, tuple[str, ...]], ...] = (
    ("VirtualMachines", "P2", None, ("AgentlessVmScanning", "MdeDesignatedSubscription")),
    ("SqlServers", None, None, ()),
    ("AppServices", None, None, ()),
    ("StorageAccounts", "DefenderForStorageV2", None, ("OnUploadMalwareScanning",)),
    ("SqlServerVirtualMachines", None, None, ()),
    ("KubernetesService", None, ("Containers",), ()),
    ("ContainerRegistry", None, ("Containers",), ()),
    ("KeyVaults", "PerKeyVault", None, ()),
    ("Dns", None, None, ()),
    ("Arm", "PerSubscription", None, ()),
    ("OpenSourceRelationalDatabases", None, None, ()),
    ("CosmosDbs", None, None, ()),
    ("Containers", None, None, ("ContainerRegistriesVulnerabilityAssessments",)),
    ("CloudPosture", None, None, ("AgentlessVmScanning", "SensitiveDataDiscovery")),
)

TENANT_NAMES = (
    "Contoso",
    "Fabrikam",
    "Northwind Traders",
    "Tailspin Toys",
    "Wide World Importers",
    "Adventure Works",
    "Woodgrove Bank",
    "Litware",
    "Proseware",
    "Trey Research",
    "Alpine Ski House",
    "Coho Winery",
    "Fourth Coffee",
    "Lamna Healthcare",
    "Margie's Travel",
    "Relecloud",
    "VanArsdel",
    "Wingtip Toys",
    "Humongous Insurance",
    "Blue Yonder Airlines",
)
SUBSCRIPTION_ROLES = (
    "Production",
    "Development",
    "Shared Services",
    "Test",
    "Data Platform",
    "Identity",
    "Connectivity",
    "Sandbox",
    "DR",
    "Analytics",
    "Extra",
)
LOCATIONS = (
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "westus2",
    "uksouth",
    "francecentral",
    "germanywestcentral",
    "swedencentral",
    "centralus",
)
