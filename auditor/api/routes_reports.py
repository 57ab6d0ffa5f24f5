"""Evidence packs over HTTP: request one, list a tenant's packs, look one up, download it.

- ``POST /api/tenants/{tenantId}/reports`` queues a pack (202, ``Location`` = its status URL);
- ``GET /api/tenants/{tenantId}/reports`` lists the tenant's packs (stored, failed, queued);
- ``GET /api/tenants/{tenantId}/reports/{reportId}`` gives a pack's status, hashes, snapshots and
  download link: a short-lived read-only user-delegation SAS URL in Azure, the streamed
  ``/workbook`` route below when storage is a connection string (local runs);
- ``GET /api/tenants/{tenantId}/reports/{reportId}/workbook`` streams the workbook;
- ``GET /api/tenants/{tenantId}/reports/{reportId}/oscal`` streams its OSCAL assessment results.

Same access policy as the diff: a tenant outside the caller's grant answers exactly as one that
does not exist. The service comes from ``create_app(extra={"reports": ...})``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ConfigDict, Field, ValidationError

from auditor.adapters.blobs import JSON_TYPE, READ_LINK_LIFETIME, XLSX_TYPE
from auditor.adapters.pack_repository import PackStatus
from auditor.api import documents
from auditor.api.context import ApiContext, caller, context
from auditor.api.params import (
    REF_HELP,
    REF_REGEX,
    WORDS,
    TenantIdPath,
    snapshot_ref,
    tenant_id,
)
from auditor.api.problems import (
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    ApiProblem,
    documented,
    invalid,
    tenant_not_found,
    validation_detail,
)
from auditor.api.representation import dump_json
from auditor.api.schemas import Strict
from auditor.core import jsonlimits
from auditor.core.access import Principal
from auditor.core.evidence import REPORT_ID, StoredFile, iso
from auditor.services.report import QUEUED, SUCCEEDED, LazyReportService, ReportService

router = APIRouter(tags=["evidence packs"])

REPORT_ID_REGEX = REPORT_ID.pattern
ReportIdPath = Annotated[
    str,
    Path(
        alias="reportId",
        pattern=REPORT_ID_REGEX,
        description="Report id: generation time and 8 hex digits, e.g. 20250201T040000Z-0a1b2c3d.",
    ),
]
NO_STORE = {"Cache-Control": "no-store"}


class PackRequest(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(
        default=None,
        alias="from",
        pattern=REF_REGEX,
        description=f"Start of the period. {REF_HELP} Default: 30 days before `to`.",
    )
    to: str | None = Field(
        default=None,
        pattern=REF_REGEX,
        description=f"End of the period. {REF_HELP} Default: the latest snapshot.",
    )


async def pack_request(request: Request) -> PackRequest:
    """The optional JSON body of a pack request; a 400 naming the field (or `body`) if bad.

    Parsed here rather than by FastAPI, whose answer to an undecodable body is not a problem
    document."""
    raw = await request.body()
    if not raw.strip():
        return PackRequest()
    try:
        data = jsonlimits.loads(raw)
    except ValueError:
        raise invalid(
            "body", 'the body must be a JSON object such as {"from": ..., "to": ...}'
        ) from None
    try:
        return PackRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        parameter = f"body.{where}" if where else "body"
        raise invalid(parameter, validation_detail(parameter, error, WORDS)) from None


class PackSnapshot(Strict):
    snapshotId: str
    scheduledAt: datetime
    status: str
    contentHash: str
    previousSnapshotId: str | None
    previousHash: str | None


class Download(Strict):
    url: str = Field(description="Where to read the file.")
    kind: str = Field(description="`sas`: a read-only URL of the blob; `stream`: this API.")
    expiresAt: datetime | None = Field(description="When a `sas` URL stops working.")


class Failure(Strict):
    reason: str
    failedAt: datetime
    supersededBy: str | None = Field(description="The report id built instead, if any.")


class PackItem(Strict):
    reportId: str
    tenantId: str
    status: str = Field(description="queued, succeeded or failed.")
    statusUrl: str
    requestedAt: datetime | None
    requestedBy: str | None
    periodFrom: datetime | None
    periodTo: datetime | None
    startSnapshotId: str | None
    endSnapshotId: str | None
    generatedAt: datetime | None
    generatorVersion: str | None
    packSha256: str | None = Field(description="SHA-256 of the manifest's canonical `pack`.")
    workbookSha256: str | None
    workbookBytes: int | None
    workbookBlob: str | None
    oscalSha256: str | None = Field(
        description="SHA-256 of the pack's OSCAL assessment results; null in packs made "
        "before OSCAL."
    )
    oscalBytes: int | None
    oscalBlob: str | None
    manifestBlob: str | None
    failure: Failure | None


class PackDetail(PackItem):
    snapshots: list[PackSnapshot]
    download: Download | None = Field(description="Where to read the workbook.")
    oscalDownload: Download | None = Field(
        description="Where to read the OSCAL assessment results (null when the pack has none)."
    )


class PackList(Strict):
    value: list[PackItem]


class PackAccepted(Strict):
    reportId: str
    status: str
    statusUrl: str


def reports(ctx: Annotated[ApiContext, Depends(context)]) -> ReportService:
    provider = ctx.extra["reports"]
    if isinstance(provider, LazyReportService):
        return provider.service
    service: ReportService = provider
    return service


def _visible(ctx: ApiContext, who: Principal, tenant: str) -> str:
    tenant = ctx.visible_tenant(who, tenant_id(tenant))
    if not ctx.history.has_snapshots(tenant):
        raise tenant_not_found()
    return tenant


def _status_url(tenant: str, report_id: str) -> str:
    return f"/api/tenants/{tenant}/reports/{report_id}"


def _time(value: datetime | None) -> str | None:
    return documents.instant(value) if value else None


def _item(status: PackStatus) -> dict[str, Any]:
    stored, request, failure = status.stored, status.request, status.failure
    pack = stored.manifest if stored else None
    oscal = stored.oscal if stored else None
    return {
        "reportId": status.report_id,
        "tenantId": status.tenant_id,
        "status": status.status,
        "statusUrl": _status_url(status.tenant_id, status.report_id),
        "requestedAt": _time(request.requested_at) if request else None,
        "requestedBy": request.requested_by if request else None,
        "periodFrom": _time(pack.period_from if pack else request.period_from if request else None),
        "periodTo": _time(pack.period_to if pack else request.period_to if request else None),
        "startSnapshotId": pack.start if pack else None,
        "endSnapshotId": pack.end if pack else None,
        "generatedAt": _time(pack.generated_at) if pack else None,
        "generatorVersion": pack.generator_version if pack else None,
        "packSha256": stored.pack_sha256 if stored else None,
        "workbookSha256": stored.workbook.sha256 if stored else None,
        "workbookBytes": stored.workbook.bytes if stored else None,
        "workbookBlob": stored.workbook.blob if stored else None,
        "oscalSha256": oscal.sha256 if oscal else None,
        "oscalBytes": oscal.bytes if oscal else None,
        "oscalBlob": oscal.blob if oscal else None,
        "manifestBlob": status.manifest_blob,
        "failure": None
        if failure is None
        else {
            "reason": failure.reason,
            "failedAt": _time(failure.failed_at),
            "supersededBy": failure.superseded_by,
        },
    }


def _period_end(name: str, value: str | None) -> tuple[str | None, datetime | None]:
    """A period end as the job stores it (snapshot id, or UTC instant), and its moment."""
    ref = snapshot_ref(name, value)  # a 400 naming the field when malformed
    if ref is None:
        return None, None
    return (ref.snapshot_id or iso(ref.moment)), ref.moment


def _json(
    document: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        dump_json(document),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


@router.post(
    "/api/tenants/{tenantId}/reports",
    status_code=202,
    response_model=PackAccepted,
    summary="Request an evidence pack",
    description=(
        "Queue an evidence pack (Excel workbook) of the tenant for a period: the period's first "
        "and last snapshots are compared and every snapshot between them is named with its "
        "hash. Answers 202 with the pack's report id; its status URL (also in `Location`) "
        "says when it is stored. Packs are written once: a new request always makes a new pack."
    ),
    responses={
        202: {"description": "Queued."},
        **documented(400, 401, 404, 413, 415, 500, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": PackRequest.model_json_schema()}},
        }
    },
)
def request_pack(
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    service: Annotated[ReportService, Depends(reports)],
    wanted: Annotated[PackRequest, Depends(pack_request)],
) -> Response:
    tenant = _visible(ctx, who, tenant)
    start, start_at = _period_end("body.from", wanted.from_)
    end, end_at = _period_end("body.to", wanted.to)
    if start_at and end_at and start_at > end_at:
        raise invalid("body.from", "from is later than to")
    job = service.request(tenant, start, end, who.object_id)
    url = _status_url(tenant, job.report_id)
    return _json(
        {"reportId": job.report_id, "status": QUEUED, "statusUrl": url}, 202, {"Location": url}
    )


@router.get(
    "/api/tenants/{tenantId}/reports",
    response_model=PackList,
    summary="A tenant's evidence packs",
    description="Every pack of the tenant, newest first: stored, failed and still queued.",
    responses=documented(400, 401, 404, 500, 503),
)
def list_packs(
    tenant: TenantIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    service: Annotated[ReportService, Depends(reports)],
) -> Response:
    tenant = _visible(ctx, who, tenant)
    return _json({"value": [_item(status) for status in service.list_packs(tenant)]})


@router.api_route(
    "/api/tenants/{tenantId}/reports",
    methods=["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)
def other_methods() -> Response:
    # GET and POST are two routes on one path: without this, a 405 would name only one of them.
    raise ApiProblem(
        405,
        METHOD_NOT_ALLOWED,
        "This path does not answer that method.",
        headers={"Allow": "GET, HEAD, POST"},
    )


def _pack(service: ReportService, tenant: str, report_id: str) -> PackStatus:
    status = service.status(tenant, report_id)
    if status is None:
        raise ApiProblem(404, NOT_FOUND, "No evidence pack with this id for this tenant.")
    return status


@router.get(
    "/api/tenants/{tenantId}/reports/{reportId}",
    response_model=PackDetail,
    summary="An evidence pack: status, hashes, snapshots and download link",
    description=(
        "The pack's status; once stored, its manifest (period, every snapshot used with its "
        "content hash and predecessor hash, pack and workbook SHA-256) and a download link: "
        f"in Azure a read-only SAS URL valid for {READ_LINK_LIFETIME.seconds // 60} minutes, "
        "locally this API's streamed `/workbook`."
    ),
    responses=documented(400, 401, 404, 500, 503),
)
def get_pack(
    tenant: TenantIdPath,
    report: ReportIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    service: Annotated[ReportService, Depends(reports)],
) -> Response:
    tenant = _visible(ctx, who, tenant)
    status = _pack(service, tenant, report)
    document = _item(status)
    pack = status.stored.manifest if status.stored else None
    document["snapshots"] = [
        {
            "snapshotId": s.snapshot_id,
            "scheduledAt": documents.instant(s.scheduled_at),
            "status": s.status,
            "contentHash": s.content_hash,
            "previousSnapshotId": s.previous_snapshot_id,
            "previousHash": s.previous_hash,
        }
        for s in (pack.snapshots if pack else ())
    ]
    document["download"] = _download(service, status, status.workbook_blob, "workbook")
    document["oscalDownload"] = _download(service, status, status.oscal_blob, "oscal")
    headers = {"Retry-After": "30"} if status.status == QUEUED else {}
    return _json(document, headers=headers)


def _download(
    service: ReportService, status: PackStatus, blob: str | None, route: str
) -> dict[str, Any] | None:
    """Where to read one stored file of a pack: a SAS URL in Azure, else this API's route."""
    if status.status != SUCCEEDED or blob is None:
        return None
    if service.evidence.identity_based:
        now = datetime.now(UTC)
        return {
            "url": service.evidence.read_link(blob, now),
            "kind": "sas",
            "expiresAt": documents.instant(now + READ_LINK_LIFETIME),
        }
    return {
        "url": f"{_status_url(status.tenant_id, status.report_id)}/{route}",
        "kind": "stream",
        "expiresAt": None,
    }


def _stream(service: ReportService, file: StoredFile, media_type: str, filename: str) -> Response:
    """A stored file as it downloads, byte for byte, named and typed."""
    return StreamingResponse(
        service.evidence.iter_chunks(file.blob),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(file.bytes),
            "ETag": f'"{file.sha256}"',
            "Cache-Control": "private, max-age=3600, immutable",
        },
    )


@router.get(
    "/api/tenants/{tenantId}/reports/{reportId}/workbook",
    summary="Download an evidence pack's workbook",
    description="The stored .xlsx, streamed from the evidence container.",
    responses={
        200: {"content": {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        **documented(400, 401, 404, 500, 503),
    },
)
def download_pack(
    tenant: TenantIdPath,
    report: ReportIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    service: Annotated[ReportService, Depends(reports)],
) -> Response:
    tenant = _visible(ctx, who, tenant)
    status = _pack(service, tenant, report)
    if status.status != SUCCEEDED or status.stored is None:
        raise ApiProblem(404, NOT_FOUND, "This evidence pack has no stored workbook (yet).")
    return _stream(service, status.stored.workbook, XLSX_TYPE, f"{report}.xlsx")


@router.get(
    "/api/tenants/{tenantId}/reports/{reportId}/oscal",
    summary="Download an evidence pack's OSCAL assessment results",
    description=(
        "The stored NIST OSCAL assessment-results document (JSON) of the pack's period, one "
        "result per snapshot, streamed byte for byte from the evidence container (its SHA-256 "
        "is the pack's `oscalSha256`). Packs made before OSCAL have none: 404."
    ),
    responses={
        200: {"content": {JSON_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        **documented(400, 401, 404, 500, 503),
    },
)
def download_oscal(
    tenant: TenantIdPath,
    report: ReportIdPath,
    ctx: Annotated[ApiContext, Depends(context)],
    who: Annotated[Principal, Depends(caller)],
    service: Annotated[ReportService, Depends(reports)],
) -> Response:
    tenant = _visible(ctx, who, tenant)
    status = _pack(service, tenant, report)
    if status.status != SUCCEEDED or status.stored is None:
        raise ApiProblem(404, NOT_FOUND, "This evidence pack has no stored OSCAL document (yet).")
    if status.stored.oscal is None:
        raise ApiProblem(
            404, NOT_FOUND, "There is no OSCAL document in this pack (made before OSCAL)."
        )
    return _stream(service, status.stored.oscal, JSON_TYPE, f"{report}.oscal.json")
