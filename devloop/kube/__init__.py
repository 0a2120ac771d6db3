"""Everything that talks to a Kubernetes cluster. The only package that imports `kubernetes`."""
