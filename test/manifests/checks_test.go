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

package manifests

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// managerContainerName is the manager's container in the Deployment.
const managerContainerName = "manager"

// fromUnstructured converts obj into the typed object out, failing the test when it does not fit.
func fromUnstructured(t *testing.T, obj *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, out, true); err != nil {
		t.Fatalf("%s does not decode as %T: %v", describe(obj), out, err)
	}
}

// managerDeployment returns the rendering's only Deployment and its manager container.
func managerDeployment(t *testing.T, r rendering) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	deployments := r.ofKind("Deployment")
	if len(deployments) != 1 {
		t.Fatalf("want exactly one Deployment, got %d", len(deployments))
	}
	deploy := &appsv1.Deployment{}
	fromUnstructured(t, deployments[0], deploy)
	for i := range deploy.Spec.Template.Spec.Containers {
		if c := &deploy.Spec.Template.Spec.Containers[i]; c.Name == managerContainerName {
			return deploy, c
		}
	}
	t.Fatalf("Deployment %s has no %q container", deploy.Name, managerContainerName)
	return nil, nil
}

// managerFlags parses the container's arguments: --name=value, or --name alone for a boolean
// true. Every argument must be a flag, given once.
func managerFlags(t *testing.T, c *corev1.Container) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, arg := range c.Args {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !strings.HasPrefix(arg, "--") || name == "" {
			t.Errorf("manager argument %q is not a --flag", arg)
			continue
		}
		if !hasValue {
			value = "true"
		}
		if _, dup := flags[name]; dup {
			t.Errorf("manager flag --%s is given twice (the last one wins): %q", name, c.Args)
		}
		flags[name] = value
	}
	return flags
}

// flagIsTrue reports whether a boolean flag's value parses as true.
func flagIsTrue(flags map[string]string, name string) bool {
	v, ok := flags[name]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// knownManagerFlags lists the flags the manager binary defines: those its source in cmd/ defines
// with the standard flag package's functions, the zap logging flags it binds, and --kubeconfig,
// which controller-runtime registers. Reading the source keeps the test from building the binary.
func knownManagerFlags(t *testing.T, root string) map[string]bool {
	t.Helper()
	known := map[string]bool{"kubeconfig": true}
	files, err := filepath.Glob(filepath.Join(root, "cmd", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parsing %s: %v", path, err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if name, ok := flagDefinition(n); ok {
				known[name] = true
			}
			return true
		})
	}
	if len(known) == 1 {
		t.Fatalf("found no flag.XxxVar(...) definitions in %s/cmd/*.go: update knownManagerFlags to how the manager defines its flags", root)
	}
	zapFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	(&zap.Options{}).BindFlags(zapFlags)
	zapFlags.VisitAll(func(f *flag.Flag) { known[f.Name] = true })
	return known
}

// flagDefinition returns the flag name n defines when n is a call such as
// flag.StringVar(&v, "name", ...) or flag.Bool("name", ...).
func flagDefinition(n ast.Node) (string, bool) {
	call, ok := n.(*ast.CallExpr)
	if !ok {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "flag" {
		return "", false
	}
	nameArg := 0
	switch sel.Sel.Name {
	case "Bool", "Duration", "Float64", "Int", "Int64", "String", "Uint", "Uint64", "Func", "BoolFunc":
	case "BoolVar", "DurationVar", "Float64Var", "IntVar", "Int64Var", "StringVar", "UintVar", "Uint64Var", "TextVar", "Var":
		nameArg = 1
	default:
		return "", false
	}
	if len(call.Args) <= nameArg {
		return "", false
	}
	lit, ok := call.Args[nameArg].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	name, err := strconv.Unquote(lit.Value)
	return name, err == nil
}

// containerPort resolves a probe's or Service's port (a number or a port name) against the
// container's ports; 0 when a name matches none.
func containerPort(c *corev1.Container, port intstr.IntOrString) int32 {
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	return 0
}

// declaresPort reports whether the container declares port number n, as the target of a
// Service or NetworkPolicy should be.
func declaresPort(c *corev1.Container, n int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == n })
}

// bindPort is the port of a --*-bind-address value such as ":8443"; 0 when there is none.
func bindPort(addr string) int32 {
	_, port, ok := strings.Cut(addr, ":")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// selects reports whether the label selector (never an empty one, which selects everything)
// matches set.
func selects(t *testing.T, selector *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	if selector == nil || (len(selector.MatchLabels) == 0 && len(selector.MatchExpressions) == 0) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		t.Errorf("invalid label selector %v: %v", selector, err)
		return false
	}
	return s.Matches(labels.Set(set))
}

// policyRules returns the rules of a Role or ClusterRole.
func policyRules(t *testing.T, obj *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	if obj.GetKind() == "Role" {
		role := &rbacv1.Role{}
		fromUnstructured(t, obj, role)
		return role.Rules
	}
	role := &rbacv1.ClusterRole{}
	fromUnstructured(t, obj, role)
	return role.Rules
}

// allows reports whether rules grant verb on resource in apiGroup (wildcards included).
func allows(rules []rbacv1.PolicyRule, apiGroup, resource, verb string) bool {
	matches := func(list []string, v string) bool {
		return slices.Contains(list, v) || slices.Contains(list, rbacv1.ResourceAll)
	}
	for _, r := range rules {
		if matches(r.APIGroups, apiGroup) && matches(r.Resources, resource) && matches(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// serviceAccountRules collects what the rendering grants the ServiceAccount namespace/name:
// cluster-wide through ClusterRoleBindings, and in each namespace through RoleBindings.
func serviceAccountRules(t *testing.T, r rendering, namespace, name string) (cluster []rbacv1.PolicyRule,
	inNamespace map[string][]rbacv1.PolicyRule) {
	t.Helper()
	inNamespace = map[string][]rbacv1.PolicyRule{}
	boundToSA := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == name
		})
	}
	for _, obj := range r.ofKind("ClusterRoleBinding") {
		b := &rbacv1.ClusterRoleBinding{}
		fromUnstructured(t, obj, b)
		if role := r.find("ClusterRole", "", b.RoleRef.Name); role != nil && boundToSA(b.Subjects) {
			cluster = append(cluster, policyRules(t, role)...)
		}
	}
	for _, obj := range r.ofKind("RoleBinding") {
		b := &rbacv1.RoleBinding{}
		fromUnstructured(t, obj, b)
		if !boundToSA(b.Subjects) {
			continue
		}
		role := r.find(b.RoleRef.Kind, b.Namespace, b.RoleRef.Name)
		if b.RoleRef.Kind == "ClusterRole" {
			role = r.find("ClusterRole", "", b.RoleRef.Name)
		}
		if role != nil {
			inNamespace[b.Namespace] = append(inNamespace[b.Namespace], policyRules(t, role)...)
		}
	}
	return cluster, inNamespace
}

// generatedManagerRules reads the manager's rules from config/rbac/role.yaml, which
// `make manifests` generates from the +kubebuilder:rbac markers.
func generatedManagerRules(t *testing.T, root string) []rbacv1.PolicyRule {
	t.Helper()
	path := filepath.Join(root, "config", "rbac", "role.yaml")
	objects := mustDecodeFile(t, path)
	if len(objects) != 1 || objects[0].GetKind() != "ClusterRole" {
		t.Fatalf("%s: want one ClusterRole, got %d objects", path, len(objects))
	}
	rules := policyRules(t, objects[0])
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", path)
	}
	return rules
}

// formatRules prints rules one per line, for failure messages.
func formatRules(rules []rbacv1.PolicyRule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "  groups=%q resources=%q nonResourceURLs=%q verbs=%q\n", r.APIGroups, r.Resources, r.NonResourceURLs, r.Verbs)
	}
	return b.String()
}
