"""Opens what enrichment needs from settings: the GeoIP databases and the client-hash key."""

from __future__ import annotations

from pipeline.geo import privacy
from pipeline.settings import Settings


def open_enrichment(s: Settings):  # type: ignore[no-untyped-def]
    """(GeoIP or None, ip key). Fails with a message naming the setting when a database is bad."""
    from pipeline.geo.geoip import GeoIP

    geo = GeoIP.open(city=s.geoip_city, country=s.geoip_country, asn=s.geoip_asn)
    return geo, ip_key(s)


def ip_key(s: Settings) -> bytes:
    """The client-hash key: DLCDN_IP_KEY as loaded, else the environment's, else the key file."""
    if s.ip_key is not None:
        return privacy.ip_key(s.ip_key.get_secret_value())
    return privacy.load_ip_key()
