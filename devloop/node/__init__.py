"""The node: the machine side of a cluster, as an API client (devloop.node.node)."""
