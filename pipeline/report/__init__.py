"""The weekly report: HTML with charts, its CSV tables, and its delivery by mail."""
