"""The exceptions both implementations raise (one set of classes, shared)."""

from __future__ import annotations

from typing import Any

__all__ = ["FlowExists", "FlowNotFound", "FlowRegistryError"]


class FlowRegistryError(Exception):
    """Base class of the errors flowreg raises for registry operations."""


class FlowNotFound(FlowRegistryError, KeyError):
    """No flow is stored under the id; ``args[0]`` is the id as the caller passed it."""

    def __init__(self, fid: Any, detail: str = "") -> None:
        super().__init__(fid)
        self.fid = fid
        self.detail = detail

    def __str__(self) -> str:
        message = f"flow id {self.fid!r} not found"
        return f"{message}: {self.detail}" if self.detail else message


class FlowExists(FlowRegistryError, ValueError):
    """``create_flow`` was asked to create an id that is already taken."""

    def __init__(self, fid: Any) -> None:
        super().__init__(fid)
        self.fid = fid

    def __str__(self) -> str:
        return f"flow id {self.fid!r} already exists"
