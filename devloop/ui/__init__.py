"""Front ends: they render the loop's events and never talk to the cluster."""
