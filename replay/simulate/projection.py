"""A local equirectangular projection: lon/lat degrees ↔ metres around a fixed origin.

The simulator does all its geometry (noise, ride paths, distances, sampling) in metres. Across
Xiamen Island (~13 × 15 km) an equirectangular projection is accurate to well under 0.1%, and it is
affine in lon/lat, so a point inside a polygon stays inside it after projecting both.
"""

from __future__ import annotations

__all__ = ["LocalProjection", "XIAMEN_BBOX", "XIAMEN_ORIGIN", "EARTH_RADIUS_M"]

import math

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius
#: Xiamen Island's bounding box (lon_min, lat_min, lon_max, lat_max): the DCIC fence file's extent.
XIAMEN_BBOX = (118.067, 24.427, 118.193, 24.558)
#: Centre of that box; the projection origin used throughout the simulator.
XIAMEN_ORIGIN = (118.130, 24.4925)


class LocalProjection:
    """Project WGS84 lon/lat (degrees) to local x east / y north (metres) and back, vectorized.

    Parameters
    ----------
    origin
        ``(lon, lat)`` that maps to ``(0, 0)``.

    Example
    -------
    >>> p = LocalProjection()
    >>> x, y = p.to_xy(np.array([118.131]), np.array([24.4925]))
    >>> round(float(x[0]), 1), float(y[0])
    (101.2, 0.0)
    >>> lon, lat = p.to_lonlat(x, y)
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (118.131, 24.4925)
    """

    def __init__(self, origin: tuple[float, float] = XIAMEN_ORIGIN) -> None:
        self.origin = origin
        self.m_per_deg_lat = math.pi * EARTH_RADIUS_M / 180.0
        self.m_per_deg_lon = self.m_per_deg_lat * math.cos(math.radians(origin[1]))

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Degrees → metres."""
        x = (np.asarray(lon, np.float64) - self.origin[0]) * self.m_per_deg_lon
        y = (np.asarray(lat, np.float64) - self.origin[1]) * self.m_per_deg_lat
        return x, y

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metres → degrees."""
        lon = np.asarray(x, np.float64) / self.m_per_deg_lon + self.origin[0]
        lat = np.asarray(y, np.float64) / self.m_per_deg_lat + self.origin[1]
        return lon, lat

    def coords_to_xy(self, coords: np.ndarray) -> np.ndarray:
        """An ``(..., 2)`` array of ``[lon, lat]`` → the same shape in metres."""
        x, y = self.to_xy(coords[..., 0], coords[..., 1])
        return np.stack([x, y], axis=-1)

    def coords_to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        """An ``(..., 2)`` array of ``[x, y]`` metres → ``[lon, lat]`` degrees."""
        lon, lat = self.to_lonlat(xy[..., 0], xy[..., 1])
        return np.stack([lon, lat], axis=-1)
