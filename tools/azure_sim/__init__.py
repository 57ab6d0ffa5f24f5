"""Azure simulator: a local HTTPS stand-in for managed identity, Resource Graph and two Defender
for Cloud REST operations over a seeded multi-tenant estate. See docs/simulator.md.

It never imports the product (``auditor``): it stands in for Azure.
"""

from .estate import Estate

__all__ = ["Estate"]
