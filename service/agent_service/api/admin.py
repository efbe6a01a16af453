"""The admin API: export or erase every thread of a user or of a tenant (with auth on only).

Callers need AUTH_ADMIN_ROLE (spec.auth.adminRole, default ``admin``) in their roles claim
(AUTH_ROLES_CLAIM): 401 without a valid token, 403 without the role. A user is the ``sub`` that
created the threads; a tenant, the tenant claim they were created under. An unknown user or tenant
has no threads: an empty export, nothing deleted. See ``agent_service.runs.erasure``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from agent_service.api.deps import RuntimeDep
from agent_service.runs import erasure

router = APIRouter(prefix="/admin", tags=["admin"])

#: Printable, as a `sub` or a tenant claim is; control characters and oversized ids are a 422.
OWNER_PATTERN = r"^[^\x00-\x1f\x7f]+$"
User = Annotated[str, Path(min_length=1, max_length=256, pattern=OWNER_PATTERN, description="A `sub`.")]
Tenant = Annotated[str, Path(min_length=1, max_length=256, pattern=OWNER_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Threads deleted at most by this call.")]


def _export(runtime: RuntimeDep, owner: erasure.Owner, name: str) -> StreamingResponse:
    return StreamingResponse(erasure.export(runtime.engine, owner, name), media_type="application/json")


@router.get("/users/{user}/threads/export")
async def export_user_threads(user: User, runtime: RuntimeDep) -> StreamingResponse:
    """Every thread the user created, as a JSON array (streamed): record and values, checkpoints with
    their pending writes, runs with their event logs."""
    return _export(runtime, "user", user)


@router.get("/tenants/{tenant}/threads/export")
async def export_tenant_threads(tenant: Tenant, runtime: RuntimeDep) -> StreamingResponse:
    """Every thread of the tenant, as ``export_user_threads``."""
    return _export(runtime, "tenant", tenant)


@router.delete("/users/{user}/threads")
async def erase_user_threads(user: User, runtime: RuntimeDep, limit: Limit = 1000) -> dict[str, int]:
    """Deletes the user's threads with everything of them; call again while ``remaining`` > 0."""
    return await erasure.erase(runtime.engine, "user", user, limit)


@router.delete("/tenants/{tenant}/threads")
async def erase_tenant_threads(tenant: Tenant, runtime: RuntimeDep, limit: Limit = 1000) -> dict[str, int]:
    """Deletes the tenant's threads, as ``erase_user_threads``."""
    return await erasure.erase(runtime.engine, "tenant", tenant, limit)
