// Package tool is the `batchkv` command as an importable package: a table of
// subcommands, each parsing its own flags (with BATCHKV_* environment
// fallback, see package cli) and writing to the streams it is given, so tests
// run it in-process. cmd/batchkv only maps Run's error to an exit code.
//
// Adding a subcommand is adding a Command to the table: see Register.
package tool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/batchkv/batchkv/internal/cli"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Command is one subcommand of batchkv.
type Command struct {
	// Name is the word after batchkv ("build").
	Name string
	// Synopsis is the usage line ("batchkv get DIR KEY").
	Synopsis string
	// Summary is one line for the command list.
	Summary string
	// Run runs the command with the arguments after its name.
	Run func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	// LookupEnv reads environment variables (os.LookupEnv by default).
	LookupEnv func(string) (string, bool)
}

// FlagSet returns a flag set for cmd whose help goes to Stderr.
func (e *Env) FlagSet(cmd *Command) *flag.FlagSet {
	return cli.NewFlagSet(cmd.Name, cmd.Synopsis, e.Stderr)
}

// Parse parses args into fs with the environment fallback.
func (e *Env) Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	return cli.Parse(fs, args, e.LookupEnv)
}

// Logger returns a console logger on Stderr for progress messages.
func (e *Env) Logger(quiet bool) *zap.Logger {
	if quiet {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncodeCaller = nil
	cfg.CallerKey = ""
	cfg.StacktraceKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(e.Stderr), zap.InfoLevel))
}

// Tool is the batchkv command.
type Tool struct {
	commands []*Command
}

// New returns the tool with the built-in subcommands.
func New() *Tool {
	t := &Tool{}
	t.Register(buildCommand())
	t.Register(inspectCommand())
	t.Register(getCommand())
	t.Register(genCommand())
	t.Register(publishCommand())
	t.Register(versionsCommand())
	t.Register(pinCommand())
	t.Register(diffCommand())
	t.Register(&Command{
		Name: "version", Synopsis: "batchkv version", Summary: "print the tool's version",
		Run: runVersion,
	})
	return t
}

// Register adds a subcommand (publish, versions, pin, diff, … come this way).
// A later registration of the same name replaces the earlier one.
func (t *Tool) Register(c *Command) {
	t.commands = slices.DeleteFunc(t.commands, func(o *Command) bool { return o.Name == c.Name })
	t.commands = append(t.commands, c)
	slices.SortFunc(t.commands, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
}

// Run runs batchkv with args (without the program name), writing to stdout
// and stderr. Errors wrapping cli.ErrUsage are command-line mistakes (exit
// 2); flag.ErrHelp means help was printed (exit 0).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return New().Run(ctx, &Env{Stdout: stdout, Stderr: stderr}, args)
}

// Run runs the subcommand named by args[0].
func (t *Tool) Run(ctx context.Context, env *Env, args []string) error {
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	if len(args) == 0 {
		t.usage(env.Stderr)
		return cli.UsageError("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := t.lookup(args[1]); c != nil {
				return c.Run(ctx, env, []string{"--help"})
			}
		}
		t.usage(env.Stdout)
		return flag.ErrHelp
	}
	c := t.lookup(args[0])
	if c == nil {
		t.usage(env.Stderr)
		return cli.UsageError("unknown command %q", args[0])
	}
	err := c.Run(ctx, env, args[1:])
	if err != nil && !errors.Is(err, flag.ErrHelp) && !strings.HasPrefix(err.Error(), c.Name+":") {
		err = fmt.Errorf("%s: %w", c.Name, err)
	}
	return err
}

func (t *Tool) lookup(name string) *Command {
	for _, c := range t.commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (t *Tool) usage(w io.Writer) {
	fmt.Fprintf(w, "batchkv builds and manages read-only datasets served over the Redis protocol.\n\nUsage: batchkv COMMAND [ARGS…]\n\nCommands:\n")
	for _, c := range t.commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun 'batchkv COMMAND --help' for a command's flags; every flag also reads\nfrom a %s… environment variable.\n", cli.EnvPrefix)
}
