"""pdwatch: a developer daemon that keeps a Pipedreamer workflow live on Kubernetes."""

__version__ = "0.1.0"
