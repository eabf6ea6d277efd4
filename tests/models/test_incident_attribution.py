from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from models.geo.zones import Zone, load_geojson
from models.incidents.attribution import Attributor, Place

SAMPLE = Path(__file__).resolve().parents[2] / "replay" / "sample" / "geography.geojson"


def test_hierarchy_from_zones_and_fallback_grid() -> None:
    zones = [
        Zone("D1", "district", "d", shapely.box(118.0, 24.4, 118.2, 24.6)),
        Zone("S1", "street", "s", shapely.box(118.0, 24.4, 118.1, 24.6), parent="D1"),
        Zone("C1", "community", "c", shapely.box(118.0, 24.4, 118.05, 24.6), parent="S1"),
        Zone("F1", "parking_fence", "f", shapely.box(118.01, 24.41, 118.0101, 24.4101)),  # ignored
    ]
    a = Attributor(zones, cell_m=500)
    p = a.places(np.array([118.01, 118.15, 119.5]), np.array([24.45, 24.45, 24.45]))
    assert (p[0].district, p[0].street, p[0].community) == ("D1", "S1", "C1")
    assert (p[1].district, p[1].street, p[1].community) == ("D1", "", "")
    assert p[2].district == "" and p[2].grid.startswith("g")  # no grid zones: the square grid cell
    assert a.place(118.01, 24.45) == p[0]


def test_grid_zones_replace_the_fallback_on_the_sample_geography() -> None:
    a = Attributor(load_geojson(SAMPLE).raise_if_rejected())
    assert a.fallback is None
    # The simulator writes the grid into the report text: "...SM-02-03网格附近..."
    assert a.place(118.097283, 24.445543) == Place("SM", "SM-02", "", "SM-02-03")
    assert a.place(0.0, 0.0) == Place()
