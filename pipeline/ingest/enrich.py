"""Opens what enrichment needs from settings: the GeoIP databases and the client-hash key."""

from __future__ import annotations

from pipeline.geo import privacy
from pipeline.settings import Settings


def open_enrichment(s: Settings):  # type: ignore[no-untyped-def]
    """(GeoIP or None, ip key). Fails with a message naming the setting when a database is bad."""
    from pipeline.geo.geoip import GeoIP

    geo = GeoIP.open(city=s.geoip_city, country=s.geoip_country, asn=s.geoip_asn)
    key = privacy.load_ip_key(s.env or None)
    return geo, key
