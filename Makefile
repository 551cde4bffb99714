# Image URL to use all building/pushing image targets
IMG ?= ghcr.io/clinicpay/stripe-operator:dev
# VERSION is baked into the manager; its default --receiver-image is ghcr.io/clinicpay/stripe-operator:$(VERSION),
# so by default it is IMG's tag and receivers run the image the manager runs.
VERSION ?= $(lastword $(subst :, ,$(IMG)))

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: demo
demo: demo-bins ## The guided demo on 127.0.0.1: control plane, Stripe fake, operator, receivers, clinic system; cleans up.
	@bin/demo run

.PHONY: demo-up
demo-up: demo-bins ## Start the demo environment in the background and write .demo/env (KUBECONFIG, STRIPE_API_URL).
	@bin/demo up --detach

.PHONY: demo-down
demo-down: ## Stop the environment started by demo-up.
	@if [ -x bin/demo ]; then bin/demo down; else echo "no demo environment is running"; fi

.PHONY: demo-bins
demo-bins: envtest-bins ## Build what the demo runs: the manager and receiver (as in the image) and the demo driver.
	@CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd
	@CGO_ENABLED=0 go build -trimpath -o bin/receiver ./cmd/receiver
	@go build -o bin/demo ./hack/demo

.PHONY: bench
bench: demo-bins ## Benchmarks (cold start, steady state, reaction, unrelated load, receiver) → docs/benchmarks.md; BENCH_QUICK=1 for N = 50.
	go run ./hack/bench -command "make bench$(if $(BENCH_QUICK), BENCH_QUICK=1)$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" \
		$(if $(BENCH_QUICK),-quick -out $(or $(BENCH_OUT),bin/benchmarks-quick.md),-out $(or $(BENCH_OUT),docs/benchmarks.md)) $(BENCH_ARGS)

RELIABILITY_RUN ?= TestStripeFaults|TestCrashes|TestRemovalAcrossRestart|TestLeaderFailover|TestHostileInput|TestAttack|TestNothingLost|TestNoBindingReachesReceivers|TestCacheTransforms
.PHONY: reliability
reliability: envtest-bins kustomize helm ## Reliability and security suite at full size (faults, crashes, failover, hostile input, attacks, nothing lost, leaks) → docs/reliability.md.
	@rm -f "$(LOCALBIN)/reliability-figures.tsv"
	@set +e; start=$$(date +%s); \
	RELIABILITY_FULL=1 RELIABILITY_REPORT="$(LOCALBIN)/reliability-figures.tsv" KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" \
		KUSTOMIZE="$(KUSTOMIZE)" HELM="$(HELM)" go test ./test/reliability/ ./internal/receiver/ ./internal/controller/ ./test/manifests/ -count=1 -timeout 30m -v -run '$(RELIABILITY_RUN)' \
		| grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|reliability_test|_test.go' ; \
	status=$${PIPESTATUS[0]}; \
	go run ./hack/reliability-report -in "$(LOCALBIN)/reliability-figures.tsv" -out docs/reliability.md -took $$(( $$(date +%s) - start ))s; \
	exit $$status

.PHONY: e2e
e2e: envtest-bins helm kustomize ## End-to-end tests on a real one-node cluster (kubelet, containerd, kube-proxy) in a network namespace; needs root (docs/testing.md).
	@E2E_K8S_BIN="$(ENVTEST_ASSETS)" E2E_HELM="$(HELM)" E2E_KUSTOMIZE="$(KUSTOMIZE)" hack/e2e/run.sh

.PHONY: manifests
# Markers live in api/ (types: CRDs, deepcopy) and internal/ (RBAC); scanning ./... would also load and type-check
# test/ and hack/, twice as slow for the same output.
manifests: controller-gen ## Generate CRDs and RBAC from markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/...;./internal/..." output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/payments.clinicpay.dev_stripeintegrations.yaml charts/stripe-operator/crds/

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: envtest-bins
envtest-bins: ## Build etcd and kube-apiserver for envtest from the Go module proxy (idempotent).
	@hack/envtest-bins.sh >/dev/null

.PHONY: stripe-mock
stripe-mock: ## Install stripe-mock for the Stripe API contract test (idempotent).
	@LOCALBIN="$(LOCALBIN)" STRIPE_MOCK_VERSION="$(STRIPE_MOCK_VERSION)" hack/stripe-mock.sh

.PHONY: fhir-validator
fhir-validator: ## Install the FHIR R4 validator (npm fhir, FHIR.js) the FHIR relay tests run (idempotent).
	@LOCALBIN="$(LOCALBIN)" hack/fhir-validator/install.sh

.PHONY: helm
helm: ## Install helm for the chart test in test/manifests (idempotent).
	@LOCALBIN="$(LOCALBIN)" HELM_VERSION="$(HELM_VERSION)" hack/helm.sh

.PHONY: test
test: manifests generate fmt vet envtest-bins stripe-mock fhir-validator kustomize helm ## Run all tests, against a real kube-apiserver + etcd and stripe-mock.
	@# The manager and receiver the tests run as processes, linked once here (test/testbin).
	CGO_ENABLED=0 go build -o "$(LOCALBIN)/test/manager" ./cmd
	CGO_ENABLED=0 go build -o "$(LOCALBIN)/test/receiver" ./cmd/receiver
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" STRIPE_MOCK="$(LOCALBIN)/stripe-mock" FHIR_VALIDATOR="$(LOCALBIN)/fhir-validator/validate.js" KUSTOMIZE="$(KUSTOMIZE)" HELM="$(HELM)" STRIPE_OPERATOR_TEST_BINS="$(LOCALBIN)/test" go test ./... -count=1 -timeout 30m

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and fix what it can.
	"$(GOLANGCI_LINT)" run --fix

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and receiver binaries (the image's /manager and /receiver).
	CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd
	CGO_ENABLED=0 go build -trimpath -o bin/receiver ./cmd/receiver

.PHONY: run
run: manifests generate fmt vet ## Run the controller against the cluster in ~/.kube/config.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t ${IMG} .

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install CRDs into the cluster in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the cluster.
	"$(KUSTOMIZE)" build config/crd | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the controller to the cluster in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Undeploy the controller from the cluster.
	"$(KUSTOMIZE)" build config/default | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm

## Tool Versions
KUSTOMIZE_VERSION ?= v5.8.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.6.2
ENVTEST_K8S_VERSION ?= 1.37.2
STRIPE_MOCK_VERSION ?= v0.203.0
HELM_VERSION ?= v3.22.0
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)-linux-$(shell go env GOARCH)

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist.
# The link is compared resolved: in a git worktree whose bin/ is a symlink to another checkout's, the
# unresolved paths never match and every target would reinstall the tool into the shared directory.
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(realpath -- "$(1)" 2>/dev/null)" = "$$(realpath -- "$(1)-$(3)")" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" GOTOOLCHAIN=local go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef
