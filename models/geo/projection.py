"""Local metric projection: WGS84 degrees to metres on a plane tangent at a city's centre.

An equirectangular projection scaled by the WGS84 ellipsoid's radii of curvature at the centre
latitude. Across a city (±0.1° of latitude) the scale error stays under 0.1%, which is far below GPS
noise, and the maths is two multiplications per point, so it vectorizes over millions of fixes.
"""

from __future__ import annotations

__all__ = ["LocalProjection", "WGS84_A", "WGS84_E2"]

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

#: WGS84 semi-major axis (m) and first eccentricity squared.
WGS84_A = 6_378_137.0
WGS84_E2 = 0.006_694_379_990_14


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular projection around ``(lon0, lat0)``; x east and y north, in metres.

    Parameters
    ----------
    lon0, lat0
        Centre of the projection in degrees (WGS84).

    Example
    -------
    >>> p = LocalProjection(118.13, 24.49)
    >>> x, y = p.forward(np.array([118.13, 118.14]), np.array([24.49, 24.50]))
    >>> x.round(1).tolist(), y.round(1).tolist()
    ([0.0, 1013.6], [0.0, 1107.7])
    >>> [round(float(v), 6) for v in p.inverse(x, y)[0]]
    [118.13, 118.14]
    """

    lon0: float
    lat0: float

    kx: float = field(init=False, repr=False, compare=False)
    ky: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Metres per degree: prime-vertical radius times cos(lat) east, meridional radius north.
        phi = math.radians(self.lat0)
        s = 1.0 - WGS84_E2 * math.sin(phi) ** 2
        object.__setattr__(self, "kx", math.radians(1.0) * WGS84_A / math.sqrt(s) * math.cos(phi))
        object.__setattr__(self, "ky", math.radians(1.0) * WGS84_A * (1.0 - WGS84_E2) / s**1.5)

    @classmethod
    def around(cls, lon: ArrayLike, lat: ArrayLike) -> LocalProjection:
        """A projection centred on the bounding box of the given coordinates.

        >>> LocalProjection.around([118.0, 118.2], [24.4, 24.6])
        LocalProjection(lon0=118.1, lat0=24.5)
        """
        lo, la = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        if lo.size == 0:
            raise ValueError("cannot centre a projection on no coordinates")
        return cls(round(float(lo.min() + lo.max()) / 2, 9), round(float(la.min() + la.max()) / 2, 9))

    def forward(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Degrees to metres: ``(x, y)`` arrays."""
        x = (np.asarray(lon, np.float64) - self.lon0) * self.kx
        y = (np.asarray(lat, np.float64) - self.lat0) * self.ky
        return x, y

    def inverse(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Metres to degrees: ``(lon, lat)`` arrays."""
        lon = np.asarray(x, np.float64) / self.kx + self.lon0
        lat = np.asarray(y, np.float64) / self.ky + self.lat0
        return lon, lat

    def project(self, geometries: ArrayLike) -> NDArray[np.object_]:
        """Project shapely geometries (scalar or array) from degrees to metres.

        >>> g = LocalProjection(118.0, 24.0).project(shapely.box(118.0, 24.0, 118.001, 24.001))
        >>> round(float(shapely.area(g)), 1)
        11269.8
        """
        kx, ky, lon0, lat0 = self.kx, self.ky, self.lon0, self.lat0

        def fwd(c: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.column_stack([(c[:, 0] - lon0) * kx, (c[:, 1] - lat0) * ky])

        return shapely.transform(geometries, fwd)  # type: ignore[no-any-return]
