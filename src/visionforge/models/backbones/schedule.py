"""``ChannelSchedule``: an encoder's channel list that also carries its strides."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["ChannelSchedule", "channel_schedule"]


class ChannelSchedule(list):
    """The channels of an encoder's feature maps (high to low resolution), as a plain list,
    with the maps' ``strides`` attached so that a decoder built from it
    (``UNetDecoder(backbone.get_channel_schedule(), n)``) knows the input resolution."""

    def __init__(self, channels: Iterable[int], strides: Iterable[int] | None = None) -> None:
        super().__init__(int(c) for c in channels)
        self.strides: list[int] | None = [int(s) for s in strides] if strides is not None else None


def channel_schedule(encoder: Any) -> ChannelSchedule:
    """The :class:`ChannelSchedule` of any encoder exposing ``out_channels`` (and ``strides``)."""
    channels = encoder.out_channels
    channels = [channels] if isinstance(channels, int) else channels
    return ChannelSchedule(channels, getattr(encoder, "strides", None))
