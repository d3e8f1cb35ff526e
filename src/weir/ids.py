"""Typed IDs, so that a user ID cannot be passed where a key ID is expected."""

from typing import NewType

UserId = NewType("UserId", int)
GroupId = NewType("GroupId", int)
VirtualKeyId = NewType("VirtualKeyId", int)
ProviderId = NewType("ProviderId", int)
AliasId = NewType("AliasId", int)
DeploymentId = NewType("DeploymentId", int)
