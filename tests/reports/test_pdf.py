"""A pack converts to PDF with LibreOffice headless, as an auditor's tooling would print it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.core.workbook import pack_layout
from auditor.core.workbook_writer import write_workbook
from tests.reports.packs import TENANT, pack_inputs
from tools.posture_factory import make_posture, missing_subscription, with_states

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

pytestmark = pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice is not installed (apt-get install -y libreoffice-calc): "
    "the PDF conversion check needs `soffice`",
)


def _convert(workbook: Path, out: Path) -> subprocess.CompletedProcess[str]:
    assert SOFFICE is not None
    profile = out / "profile"  # own profile: parallel runs do not share LibreOffice's lock
    return subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(workbook),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_pack_converts_to_pdf_without_errors(tmp_path: Path) -> None:
    start = make_posture(TENANT, subscriptions=3, standards=4, controls=12, assessments=4)
    first = start.compliance[0]
    end = missing_subscription(
        with_states(start, {first.key: first.state.__class__("Failed")}),
        start.tenant.subscriptions[2].subscription_id,
    )
    workbook = tmp_path / "pack.xlsx"
    write_workbook(pack_layout(pack_inputs(start, end)), workbook)
    done = _convert(workbook, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not re.search(r"\berror\b", done.stdout + done.stderr, re.IGNORECASE), done.stderr
    pdf = tmp_path / "pack.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 12  # at least one page per sheet
