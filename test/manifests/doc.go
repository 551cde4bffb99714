/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package manifests holds tests of the install packaging: the kustomize overlays config/default
// and config/namespaced (namespace-scoped) and the Helm chart charts/stripe-operator. They render both with the pinned tools, apply every
// object with a server-side-apply dry run to a real kube-apiserver (envtest), and check what the
// apiserver cannot: that the manager runs hardened (restricted Pod Security Standard, probes,
// resources, leader election, authenticated metrics), that every reference between the objects
// resolves, that the chart's values reach the manager's flags, and that the chart's CRD and
// RBAC rules are the ones `make manifests` generates, that those rules grant no verb the code does
// not use, and that the real manager runs under a namespace-scoped install's RBAC alone.
//
// Run them with `make test`, which installs the tools and passes their paths: KUSTOMIZE
// (`make kustomize`), HELM (`make helm`) and KUBEBUILDER_ASSETS (`make envtest-bins`). A plain
// `go test` falls back to the repository's bin/. A missing tool fails the tests; it never
// skips them.
package manifests
