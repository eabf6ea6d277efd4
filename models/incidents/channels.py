"""The 15 channels through which complaints and reports reach the city-management centre.

``citizen`` marks channels whose reports carry a reporter's phone number (it must be hashed before
storage, see :mod:`models.incidents.privacy`); machine channels (video AI, sensors, bike monitor) and
staff patrols carry none.
"""

from __future__ import annotations

__all__ = ["Channel", "CHANNELS", "channel", "is_channel"]

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Channel:
    """One report channel.

    Example
    -------
    >>> channel("hotline_12345").name_en, channel("hotline_12345").citizen
    ('12345 citizen hotline', True)
    >>> channel("video_ai").citizen
    False
    >>> len(CHANNELS)
    15
    """

    code: str
    name_zh: str
    name_en: str
    citizen: bool


_ROWS = (
    ("hotline_12345", "12345市民服务热线", "12345 citizen hotline", True),
    ("app_photo", "市民随手拍", "Citizen photo report app", True),
    ("wechat", "微信公众号/小程序", "WeChat account or mini-program", True),
    ("collector_patrol", "信息采集员巡查", "Contracted collector patrol", False),
    ("video_ai", "视频智能识别", "Video AI detection", False),
    ("sensor", "物联网传感器", "IoT sensor alarm", False),
    ("bike_monitor", "共享单车监管平台", "Shared-bike monitoring", False),
    ("government_web", "政府网站留言", "Government website message", True),
    ("media", "媒体曝光", "News media report", False),
    ("leader_visit", "领导交办", "Assigned by officials", False),
    ("district_hotline", "区级热线", "District hotline", True),
    ("street_patrol", "街道巡查", "Street office patrol", False),
    ("email", "电子邮件", "Email", True),
    ("letter", "来信来访", "Letter or walk-in visit", True),
    ("other", "其他", "Other", False),
)

#: Channel code → :class:`Channel`, in the order above.
CHANNELS: dict[str, Channel] = {r[0]: Channel(*r) for r in _ROWS}


def channel(code: str) -> Channel:
    """The channel with ``code``; ``KeyError`` naming the code if unknown."""
    try:
        return CHANNELS[code]
    except KeyError:
        raise KeyError(f"unknown channel {code!r}") from None


def is_channel(code: object) -> bool:
    """Whether ``code`` is a known channel code.

    Example
    -------
    >>> is_channel("wechat"), is_channel("fax")
    (True, False)
    """
    return code in CHANNELS
