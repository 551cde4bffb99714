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

package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// The samples the demo applies, relative to the repository root.
const (
	samplesDir       = "config/samples"
	liveTestKeyFile  = "config/samples/mistakes/live-with-test-key.yaml"
	sampleNamespace  = "default"
	sampleName       = "clinic-a-test"
	sampleLiveName   = "clinic-b-live"
	waitTimeout      = 2 * time.Minute
	kubectlTimeout   = 3 * time.Minute
	receiverStopWait = 15 * time.Second
)

// Triggered is one event the demo had the Stripe fake send.
type Triggered struct {
	ID   string
	Type string
	// Statuses are the HTTP statuses of the first delivery attempts (one per endpoint).
	Statuses []int
}

// Result is what each step of Run observed; the demo's test checks it.
type Result struct {
	// Step 2.
	Connected bool
	Table     string
	// Step 3.
	Events   []Triggered
	Received []Received
	// Step 4.
	Payout *Payout
	// Step 5.
	Dispute *Dispute
	// Step 6.
	Delivery Delivery
	// Step 7.
	LiveReason, LiveMessage string
	LiveStripeCalls         int
	// Step 8.
	EndpointID             string
	EndpointStatusAfter    int
	EndpointsLeft          int
	ReceiversAfterDeletion int
	// After cleanup.
	RunningAfterDown int
	PIDs             []int
}

// Run starts the environment, walks through the scenario, and stops everything it started,
// also when a step fails.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	start := time.Now()
	e, err := Up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res = &Result{}
	defer func() {
		e.out.step("Cleaning up")
		res.PIDs = e.kubelet.pids()
		downErr := e.Down()
		res.RunningAfterDown = e.Running()
		if downErr != nil {
			e.out.info("cleanup: %v", downErr)
		} else {
			e.out.info("stopped the operator, %d receiver processes, the Stripe fake, the clinic system and the control plane", len(res.PIDs))
		}
		if err == nil {
			err = downErr
		}
		if err == nil {
			e.out.step(fmt.Sprintf("Demo finished in %s", time.Since(start).Round(100*time.Millisecond)))
		}
	}()
	err = e.scenario(ctx, res)
	return res, err
}

func (e *Env) scenario(ctx context.Context, res *Result) error {
	e.out.step("1. A platform team applies config/samples: a Secret with test keys and a StripeIntegration for clinic-a (Test mode)")
	if _, err := e.kubectl(ctx, "apply", "-k", samplesDir); err != nil {
		return err
	}

	e.out.step("2. The operator checks the keys, registers the webhook endpoint and starts the receiver")
	if _, err := e.kubectl(ctx, "wait", "--for=condition=Connected", "stripeintegration/"+sampleName, "-n", sampleNamespace,
		"--timeout="+waitTimeout.String()); err != nil {
		return err
	}
	res.Connected = true
	var err error
	if res.Table, err = e.kubectl(ctx, "get", "si", "-A"); err != nil {
		return err
	}
	var si v1.StripeIntegration
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: sampleNamespace, Name: sampleName}, &si); err != nil {
		return fmt.Errorf("read %s: %w", sampleName, err)
	}
	res.EndpointID = si.Status.WebhookEndpointID
	e.out.info("Stripe endpoint %s → %s", si.Status.WebhookEndpointID, si.Status.WebhookURL)
	e.out.info("receivers running: %d (kubelet stand-in); signing secret in Secret %s", e.kubelet.running(), si.Status.SigningSecretName)

	key, err := e.secretKey(ctx, si.Namespace, si.Spec.CredentialsSecretRef.Name, si.Spec.CredentialsSecretRef.SecretKeyKey)
	if err != nil {
		return err
	}

	e.out.step("3. Stripe sends payment_intent.succeeded and charge.refunded; the receiver verifies and relays them")
	paidPI, paidCharge := stripeID("pi"), stripeID("ch")
	for _, typ := range []string{"payment_intent.succeeded", "charge.refunded"} {
		var object map[string]any
		if typ == "payment_intent.succeeded" {
			object = paymentObject(paidPI, paidCharge, 12500)
		}
		ev, err := e.trigger(ctx, key, typ, object)
		if err != nil {
			return err
		}
		res.Events = append(res.Events, ev)
	}
	res.Received = e.clinic.snapshot()

	e.out.step("4. Stripe pays out: the operator writes the payout to the clinic's books and fills in the payment they never received")
	if res.Payout, err = e.payoutStep(ctx, key, paidCharge); err != nil {
		return err
	}

	e.out.step("5. The patient disputes the payment: the operator flags it in the clinic's systems of record")
	if res.Dispute, err = e.disputeStep(ctx, key, paidPI, paidCharge); err != nil {
		return err
	}

	e.out.step("6. The operator checks that Stripe's deliveries arrive: DeliveriesArriving")
	if res.Delivery, err = e.deliveryStep(ctx); err != nil {
		return err
	}

	e.out.step("7. A mistake: a Live integration given test keys")
	if _, err := e.kubectl(ctx, "apply", "-f", liveTestKeyFile); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "wait", "--for=condition=KeysValid=false", "stripeintegration/"+sampleLiveName, "-n", sampleNamespace,
		"--timeout="+waitTimeout.String()); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, "get", "si", sampleLiveName, "-n", sampleNamespace); err != nil {
		return err
	}
	var live v1.StripeIntegration
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: sampleNamespace, Name: sampleLiveName}, &live); err != nil {
		return fmt.Errorf("read %s: %w", sampleLiveName, err)
	}
	if c := meta.FindStatusCondition(live.Status.Conditions, v1.ConditionConnected); c != nil {
		res.LiveReason, res.LiveMessage = c.Reason, c.Message
	}
	liveKey, err := e.secretKey(ctx, live.Namespace, live.Spec.CredentialsSecretRef.Name, live.Spec.CredentialsSecretRef.SecretKeyKey)
	if err != nil {
		return err
	}
	res.LiveStripeCalls = e.fake.Calls(liveKey)
	e.out.info("Reason %s: %s", res.LiveReason, res.LiveMessage)
	e.out.info("Stripe API calls made with that key: %d (refused before reaching Stripe)", res.LiveStripeCalls)

	e.out.step("8. The clinic leaves: deleting clinic-a removes its Stripe endpoint and everything the operator created")
	if _, err := e.kubectl(ctx, "delete", "stripeintegration", sampleName, "-n", sampleNamespace, "--timeout="+waitTimeout.String()); err != nil {
		return err
	}
	if res.EndpointStatusAfter, res.EndpointsLeft, err = e.dashboardCheck(ctx, key, res.EndpointID); err != nil {
		return err
	}
	deadline := time.Now().Add(receiverStopWait)
	for e.kubelet.running() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	res.ReceiversAfterDeletion = e.kubelet.running()
	e.out.info("receivers running: %d (the garbage collector stand-in removed the Deployment)", res.ReceiversAfterDeletion)
	return nil
}

// kubectl runs kubectl against the demo cluster from the repository root, showing the command
// and its output like a terminal would.
func (e *Env) kubectl(ctx context.Context, args ...string) (string, error) {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = shellQuote(a)
	}
	e.out.cmd("kubectl " + strings.Join(shown, " "))
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Kubectl, args...)
	cmd.Dir = e.cfg.Root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	e.out.output(out.String())
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), nil
}

// shellQuote quotes an argument for display as a shell would need it.
func shellQuote(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// secretKey reads one key of a credentials Secret, as the admin running the demo may.
func (e *Env) secretKey(ctx context.Context, ns, name, key string) (string, error) {
	var sec corev1.Secret
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sec); err != nil {
		return "", fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
	}
	v, ok := sec.Data[key]
	if !ok {
		return "", fmt.Errorf("secret %s/%s has no key %q", ns, name, key)
	}
	return string(v), nil
}

// mask shows a key the way Stripe's dashboard does: prefix and last four characters.
func mask(key string) string {
	i := strings.LastIndexByte(key, '_')
	if i < 0 || len(key)-i <= 5 {
		return "****"
	}
	return key[:i+1] + "…" + key[len(key)-4:]
}

// trigger asks the Stripe fake's admin API to emit an event for the key's account.
// A nil object lets the fake use its sample.
func (e *Env) trigger(ctx context.Context, key, typ string, object map[string]any) (Triggered, error) {
	req := map[string]any{"key": mask(key), "type": typ}
	if object != nil {
		req["object"] = object
	}
	shown, _ := json.Marshal(req) // plain data always marshals
	e.out.cmd(fmt.Sprintf(`curl -s -X POST $STRIPE_API_URL/_fake/events -d '%s'`, shown))
	req["key"] = key
	body, _ := json.Marshal(req)
	var got struct {
		ID         string `json:"id"`
		Error      string `json:"error"`
		Deliveries []struct {
			Endpoint string `json:"endpoint"`
			Status   int    `json:"status"`
			Error    string `json:"error"`
		} `json:"deliveries"`
	}
	status, err := e.call(ctx, http.MethodPost, e.fakeURL+"/_fake/events", "", bytes.NewReader(body), &got)
	if err != nil {
		return Triggered{}, err
	}
	if status != http.StatusOK {
		return Triggered{}, fmt.Errorf("trigger %s: %d %s", typ, status, got.Error)
	}
	t := Triggered{ID: got.ID, Type: typ}
	for _, d := range got.Deliveries {
		t.Statuses = append(t.Statuses, d.Status)
		if d.Error != "" {
			e.out.info("Stripe → %s: delivery failed (%s); Stripe retries it", d.Endpoint, d.Error)
		} else {
			e.out.info("Stripe → %s: %s delivered, the receiver answered %d after the clinic system accepted it", d.Endpoint, got.ID, d.Status)
		}
	}
	if len(got.Deliveries) == 0 {
		e.out.info("no endpoint subscribes to %s", typ)
	}
	return t, nil
}

// dashboardCheck looks the endpoint up with the clinic's key, as someone would in the dashboard.
func (e *Env) dashboardCheck(ctx context.Context, key, endpointID string) (getStatus, left int, err error) {
	e.out.cmd(fmt.Sprintf("curl -s $STRIPE_API_URL/v1/webhook_endpoints/%s -u %s:", endpointID, mask(key)))
	var one struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if getStatus, err = e.call(ctx, http.MethodGet, e.fakeURL+"/v1/webhook_endpoints/"+endpointID, key, nil, &one); err != nil {
		return 0, 0, err
	}
	e.out.info("%d %s: %s", getStatus, one.Error.Code, one.Error.Message)
	e.out.cmd(fmt.Sprintf("curl -s $STRIPE_API_URL/v1/webhook_endpoints -u %s:", mask(key)))
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	status, err := e.call(ctx, http.MethodGet, e.fakeURL+"/v1/webhook_endpoints", key, nil, &list)
	if err != nil {
		return 0, 0, err
	}
	if status != http.StatusOK {
		return 0, 0, fmt.Errorf("list webhook endpoints: status %d", status)
	}
	e.out.info("%d webhook endpoints left on the account", len(list.Data))
	return getStatus, len(list.Data), nil
}

// call does one HTTP request to the Stripe fake and decodes the JSON answer.
func (e *Env) call(ctx context.Context, method, url, key string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, strings.TrimPrefix(url, e.fakeURL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, strings.TrimPrefix(url, e.fakeURL), err)
	}
	return resp.StatusCode, nil
}
