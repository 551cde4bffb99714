package logcap

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// TestCapStopsClientGoBodies: a logger capped at MaxVerbosity writes V(MaxVerbosity) and below,
// through names and values too, and reports V(8), where client-go logs bodies, as disabled to the
// code that finds it in a context, as client-go does.
func TestCapStopsClientGoBodies(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{Verbosity: 10})
	log := Cap(base, MaxVerbosity).WithName("manager").WithValues("controller", "x")

	log.V(MaxVerbosity).Info("Kept")
	log.Error(nil, "Kept error")
	from := logr.FromContextOrDiscard(logr.NewContext(context.Background(), log)) // klog.FromContext does the same
	if from.V(8).Enabled() {
		t.Error("V(8) is enabled for a logger taken from the context")
	}
	from.V(8).Info("Response Body", "body", "secret data")
	from.V(10).Info("Response Body", "body", "secret data")

	out := strings.Join(lines, "\n")
	if len(lines) != 2 || !strings.Contains(out, "Kept") || !strings.Contains(out, `manager`) || strings.Contains(out, "secret data") {
		t.Errorf("lines = %q, want the two Kept lines only", lines)
	}
}
