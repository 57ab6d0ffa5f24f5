"""Lighthouse compliance auditor: daily, evidenced Defender for Cloud posture of many tenants."""

__version__ = "0.1.0"
