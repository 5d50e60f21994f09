"""The voice-cloning capability: what every cloning adapter implements, and the refusals
they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parley_common.errors import BadInputError, ProviderRateLimitedError
from parley_common.vendor_errors import QUOTA_EXCEEDED, Vendor

__all__ = ["Sample", "VoiceCloner", "no_voice_slot", "samples_refused"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One audio file to clone a voice from, already in the provider's format."""

    filename: str
    data: bytes
    mime_type: str


class VoiceCloner(Protocol):
    """A provider that makes a voice from samples, registered by name."""

    name: str

    async def clone(self, name: str, description: str | None, samples: Sequence[Sample]) -> str:
        """Clone a voice named ``name`` at the provider; returns its voice id once the
        provider can speak with it. Refusals are ``ParleyError``s saying why."""
        ...

    async def delete(self, voice_id: str) -> None:
        """Delete the voice at the provider; one it no longer has is not an error."""
        ...

    async def aclose(self) -> None:
        """Close the adapter's connections."""
        ...


def samples_refused(vendor: Vendor, what: str) -> BadInputError:
    """The provider would not clone from these samples (``what``: its status and reason)."""
    return BadInputError(
        f"{vendor.label} refused the samples ({what}): upload clear recordings of one voice",
        code="samples_refused",
        provider=vendor.name,
    )


def no_voice_slot(vendor: Vendor, what: str) -> ProviderRateLimitedError:
    """Every custom voice slot of the account is taken: waiting does not free one."""
    return ProviderRateLimitedError(
        f"{vendor.label} has no voice slot left on this account ({what}): delete a custom"
        " voice or raise the plan's limit",
        code=QUOTA_EXCEEDED,
        provider=vendor.name,
    )
