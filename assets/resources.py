"""Dagster resources: the warehouse and landing location, read from dlcdn settings at run time."""

from pathlib import Path

import dagster as dg

from pipeline.geo.geoip import GeoIP
from pipeline.ingest import enrich
from pipeline.ingest.landing import Landing
from pipeline.settings import Settings, load
from pipeline.warehouse.store import Warehouse


class DlcdnResource(dg.ConfigurableResource):
    """Where the warehouse and landing files are. Empty fields fall back to DLCDN_* settings."""

    warehouse: str = ""
    landing: str = ""

    def settings(self) -> Settings:
        return load()

    def warehouse_path(self) -> Path:
        return Path(self.warehouse or self.settings().warehouse).absolute()

    def landing_location(self) -> Landing:
        """The landing folder or object-store URI (DLCDN_LANDING)."""
        return Landing(self.landing or self.settings().landing)

    def open_warehouse(self) -> Warehouse:
        return Warehouse(self.warehouse_path())

    def enrichment(self) -> tuple[GeoIP, bytes]:
        """(GeoIP, client-hash key) per settings; close the GeoIP when done."""
        return enrich.open_enrichment(self.settings())
