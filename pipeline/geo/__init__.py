"""Where a client is and who it is, privately: GeoIP lookups, IP prefixes, the keyed client hash."""
