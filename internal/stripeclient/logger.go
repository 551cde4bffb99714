package stripeclient

import (
	"fmt"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
)

// Verbosity of stripe-go's levels in logr. stripe-go logs every request at Info and every
// response body at Debug, which is chatter for an operator; its warnings (retries) and
// errors (failed requests) stay visible at V(0). Errors are logged as Info with
// stripeLevel=error because the controller reports and retries them; a logr Error here
// would double-report every rejected key.
const (
	debugVerbosity = 2
	infoVerbosity  = 1
)

// leveledLogger adapts logr to stripe.LeveledLoggerInterface, redacting every line.
type leveledLogger struct {
	log logr.Logger
}

var _ stripe.LeveledLoggerInterface = leveledLogger{}

// NewLeveledLogger returns a stripe-go logger that writes to log, passing every formatted
// message through Redact.
func NewLeveledLogger(log logr.Logger) stripe.LeveledLoggerInterface {
	return leveledLogger{log: log}
}

// Debugf logs at V(2).
func (l leveledLogger) Debugf(format string, v ...interface{}) {
	l.emit(debugVerbosity, "debug", format, v)
}

// Infof logs at V(1).
func (l leveledLogger) Infof(format string, v ...interface{}) {
	l.emit(infoVerbosity, "info", format, v)
}

// Warnf logs at V(0).
func (l leveledLogger) Warnf(format string, v ...interface{}) {
	l.emit(0, "warn", format, v)
}

// Errorf logs at V(0) with stripeLevel=error.
func (l leveledLogger) Errorf(format string, v ...interface{}) {
	l.emit(0, "error", format, v)
}

func (l leveledLogger) emit(verbosity int, level, format string, v []interface{}) {
	log := l.log.V(verbosity)
	if !log.Enabled() {
		return // skip formatting response bodies nobody will read
	}
	log.Info(Redact(fmt.Sprintf(format, v...)), "stripeLevel", level)
}
