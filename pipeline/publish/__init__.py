"""The public dataset: k-anonymous tables of the warehouse as a Frictionless Data Package.

`tables` declares what is published, `anonymity` holds every row to at least k distinct clients
(counted exactly from raw requests), `package` writes and validates the package. docs/publish.md.
"""
