// Package logcap caps a logger's verbosity below the levels at which client-go dumps apiserver
// request and response bodies, so no verbosity flag can put Secret data into the manager's log.
package logcap

import "github.com/go-logr/logr"

// MaxVerbosity is the highest V level that is ever written. client-go logs every request and
// response body (Secrets' data included: the clinics' Stripe keys, signing secrets) at V(8) with
// the logger it finds in the context, which is the manager's.
const MaxVerbosity = 7

// Cap returns log with every level above max disabled.
func Cap(log logr.Logger, max int) logr.Logger {
	return logr.New(sink{LogSink: log.GetSink(), max: max})
}

// sink drops lines above max; everything else goes to the wrapped sink.
type sink struct {
	logr.LogSink
	max int
}

var _ logr.CallDepthLogSink = sink{}

// Init adds this wrapper's frame to the wrapped sink's call depth (which already counts logr's),
// so that callers are reported right.
func (s sink) Init(logr.RuntimeInfo) {
	s.LogSink.Init(logr.RuntimeInfo{CallDepth: 1})
}

func (s sink) Enabled(level int) bool { return level <= s.max && s.LogSink.Enabled(level) }

func (s sink) Info(level int, msg string, kv ...any) {
	if level <= s.max {
		s.LogSink.Info(level, msg, kv...)
	}
}

func (s sink) WithValues(kv ...any) logr.LogSink {
	return sink{LogSink: s.LogSink.WithValues(kv...), max: s.max}
}

func (s sink) WithName(name string) logr.LogSink {
	return sink{LogSink: s.LogSink.WithName(name), max: s.max}
}

func (s sink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return sink{LogSink: cd.WithCallDepth(depth), max: s.max}
	}
	return s
}
