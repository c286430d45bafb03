"""An API caller in tests: a tenant and its key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Caller:
    tenant: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}
