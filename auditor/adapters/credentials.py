"""The one credential of the process: DefaultAzureCredential.

In Azure Functions it resolves to the app's managed identity (IDENTITY_ENDPOINT/IDENTITY_HEADER;
AZURE_CLIENT_ID selects a user-assigned identity). Locally it uses the developer's Azure CLI login,
or the simulator's managed-identity endpoint. For a sovereign cloud, set AZURE_AUTHORITY_HOST for
credentials that sign in (managed identity needs nothing more); the token scope always follows
AUDITOR_ARM_ENDPOINT.
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential


def build_credential() -> TokenCredential:
    # Never prompt: the auditor runs unattended.
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
