//go:build tools

// Package controlplane pins Kubernetes' control-plane commands as dependencies of this
// module, so `go build k8s.io/kubernetes/cmd/...` builds them at the release go.mod names.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
