"""The TenantDep dependency: resolves the caller's tenant from the request's credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from imagesearch.auth.tenant import DEFAULT_TENANT, Tenant
from imagesearch.config import AuthMode, get_settings
from imagesearch.errors import Unauthorized


def current_tenant() -> Tenant:
    """The default tenant when auth is off; otherwise the tenant of the presented credentials."""
    if get_settings().auth_mode is AuthMode.NONE:
        return DEFAULT_TENANT
    raise Unauthorized("authentication is required")


TenantDep = Annotated[Tenant, Depends(current_tenant)]
