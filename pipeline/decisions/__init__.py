"""What the numbers decide: mirror placement and the egress budget."""
