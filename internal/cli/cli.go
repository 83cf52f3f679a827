// Package cli holds what batchkv's commands share on the command line: flags
// that also read BATCHKV_* environment variables, and help text that lists them.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = "BATCHKV_"

// EnvName returns the environment variable that sets flag name:
// "s3-endpoint" → "BATCHKV_S3_ENDPOINT".
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ErrUsage marks an error in the command line; commands exit 2 on it.
var ErrUsage = errors.New("usage error")

// UsageError wraps a message as an ErrUsage error.
func UsageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// NewFlagSet returns a flag set whose usage text names each flag's
// environment variable. synopsis is printed first ("batchkv get DIR KEY").
func NewFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s\n\nFlags (each also read from the environment variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  --%s", f.Name)
			if typ != "" {
				fmt.Fprintf(out, " %s", typ)
			}
			fmt.Fprintf(out, "\n      %s", usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, " [$%s]\n", EnvName(f.Name))
		})
	}
	return fs
}

// Parse parses args into fs, then sets every flag not given on the command
// line from its environment variable, if that is set. lookup is os.LookupEnv
// in production. Flags may follow positional arguments ("get DIR KEY --x"),
// as users expect. It returns the positional arguments. --help returns
// flag.ErrHelp after printing the usage.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) ([]string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := EnvName(f.Name)
		if v, ok := lookup(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: $%s: %v", ErrUsage, env, e)
			}
		}
	})
	return positional, err
}

// StringList is a repeatable string flag (--input a --input b).
type StringList []string

func (s *StringList) String() string { return strings.Join(*s, ",") }

// Set appends v; from an environment variable, a comma-separated list.
func (s *StringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
