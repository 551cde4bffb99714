package receiver

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/test/kubefiles"
)

func TestSecretRotationBySymlinkSwap(t *testing.T) {
	k := kubefiles.New(t, "signingSecret", secretOld+"\n")
	target := &fakeTarget{name: "fake"}
	f := newFixture(t, "", []relay.Target{target}, func(c *Config) {
		c.SigningSecretFile = k.Path()
		c.SecretCheckInterval = time.Hour // only the forced reload can notice the swap
	})
	h := f.r.WebhookHandler()
	send := func(id, secret string) int {
		body := goodBody(t, id)
		rec, _ := post(t, h, testPath, body, sign(body, secret, time.Now()))
		return rec.Code
	}
	if c := send("evt_1", secretOld); c != http.StatusOK {
		t.Fatalf("old secret before rotation: %d", c)
	}
	k.Update(secretNew + "\n")
	// The first delivery signed with the new secret fails against the cached one, which forces
	// a reload that sees the swapped file.
	if c := send("evt_2", secretNew); c != http.StatusOK {
		t.Fatalf("new secret right after the swap: %d", c)
	}
	if c := send("evt_3", secretOld); c != http.StatusBadRequest {
		t.Errorf("old secret after the swap: %d, want 400", c)
	}
	if got := counter(t, f.r.metrics.secretReloads); got != 2 {
		t.Errorf("secret reloads = %v, want 2", got)
	}
	assertNoSecrets(t, "logs", f.logs.String(), secretOld, secretNew)
}

func TestSecretPickedUpPeriodically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signingSecret")
	f := newFixture(t, "", nil, func(c *Config) {
		c.SigningSecretFile = path
		c.SecretCheckInterval = 10 * time.Millisecond
	})
	ops := f.r.OpsHandler()
	readyz := func() int {
		rec := httptest.NewRecorder()
		ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if c := readyz(); c != http.StatusServiceUnavailable {
		t.Fatalf("readyz without a secret = %d, want 503", c)
	}
	writeFile(t, path, secretOld)
	eventually(t, "readyz to turn 200", func() bool { return readyz() == http.StatusOK })

	// An in-place rewrite (no symlink) is noticed too, without any failing delivery.
	time.Sleep(10 * time.Millisecond) // a distinct mtime on coarse-grained file systems
	writeFile(t, path, secretOld+"\n"+secretNew+"\n")
	eventually(t, "the rolled secrets", func() bool { return len(f.r.secrets.Current()) == 2 })
}

func TestSecretFileProblemsKeepPreviousSecret(t *testing.T) {
	for name, breakIt := range map[string]func(path string){
		"removed": func(path string) { _ = os.Remove(path) },
		"emptied": func(path string) { writeFile(t, path, "\n  \n") },
		"too large": func(path string) {
			writeFile(t, path, strings.Repeat("x", maxSecretFileBytes+1))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, secretOld, nil, func(c *Config) { c.SecretCheckInterval = time.Nanosecond })
			breakIt(f.secretFile)
			if got := f.r.secrets.Current(); !slices.Equal(got, []string{secretOld}) || !f.r.Ready() {
				t.Errorf("secrets after the file was %s: %d loaded, ready=%v", name, len(got), f.r.Ready())
			}
			if !contains(f.logs.String(), "Cannot load signing secret") {
				t.Errorf("no error logged:\n%s", f.logs.String())
			}
		})
	}
}

func TestParseSecrets(t *testing.T) {
	for in, want := range map[string][]string{
		"":                           nil,
		"whsec_a":                    {"whsec_a"},
		"whsec_a\n":                  {"whsec_a"},
		"whsec_a\r\nwhsec_b\r\n":     {"whsec_a", "whsec_b"},
		"\n  whsec_a  \n\n\twhsec_b": {"whsec_a", "whsec_b"},
	} {
		if got := parseSecrets([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("parseSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretCheckThrottled(t *testing.T) {
	f := newFixture(t, secretOld, nil, func(c *Config) { c.SecretCheckInterval = time.Hour })
	writeFile(t, f.secretFile, secretNew)
	if got := f.r.secrets.Current(); !slices.Equal(got, []string{secretOld}) {
		t.Errorf("the file was re-read within the interval: %d secrets", len(got))
	}
	if !reloaded(f.r.secrets) || !slices.Equal(f.r.secrets.Value(), []string{secretNew}) {
		t.Error("forced reload did not pick up the new secret")
	}
	if reloaded(f.r.secrets) {
		t.Error("a forced reload of an unchanged file reported a change")
	}
}
