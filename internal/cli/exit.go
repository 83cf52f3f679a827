package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ExitCode maps a command's error to its exit status, printing it first:
// 0 for success and --help, 2 for command-line mistakes, 1 for the rest.
func ExitCode(prog string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(stderr, prog+":", err)
		return 2
	default:
		fmt.Fprintln(stderr, prog+":", err)
		return 1
	}
}

// NewLogger returns the daemons' zap logger for the --log-level and
// --log-format flags: JSON (for log pipelines) or console (for people),
// ISO 8601 times.
func NewLogger(level, format string, out io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, UsageError("--log-level: %v", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, UsageError("--log-format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), lvl)), nil
}
