package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"
)

// config is what every command that talks to etcd needs: etcdctl's flags
// and environment (LOCKCTL_* first, then ETCDCTL_*) and lockctl's
// namespace.
type config struct {
	etcdclient.Config
	namespace string
	envErr    error // an unparsable variable, reported once etcd is needed
	// --password and --password-file given on the command line replace a
	// password from the environment, whichever form it came in.
	passwordFlag, passwordFileFlag *pflag.Flag
	stdin                          io.Reader // for the password prompt
	stderr                         io.Writer
}

func (c *config) flags(cmd *cobra.Command) {
	c.Config = etcdclient.Default()
	c.envErr = c.LoadEnv("LOCKCTL", "ETCDCTL")
	gfs := flag.NewFlagSet("lockctl", flag.ContinueOnError)
	c.AddFlags(gfs)
	gfs.VisitAll(func(f *flag.Flag) {
		name := strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if name == "KEY" {
			// LOCKCTL_KEY is the hold's key, given to the command.
			f.Usage += " ($LOCKCTL_KEY_FILE, $ETCDCTL_KEY)"
			return
		}
		f.Usage += fmt.Sprintf(" ($LOCKCTL_%s, $ETCDCTL_%s)", name, name)
	})
	f := cmd.PersistentFlags()
	f.AddGoFlagSet(gfs)
	c.passwordFlag, c.passwordFileFlag = f.Lookup("password"), f.Lookup("password-file")
	f.StringVar(&c.namespace, "namespace", os.Getenv("LOCKCTL_NAMESPACE"), "prefix for every key lockctl uses ($LOCKCTL_NAMESPACE)")
}

// validate checks the flags and environment before anything touches the
// network.
func (c *config) validate() error {
	if c.envErr != nil {
		return withCode(ExitUsage, c.envErr)
	}
	if c.passwordFlag != nil && c.passwordFlag.Changed && !c.passwordFileFlag.Changed {
		c.PasswordFile = ""
	}
	if c.passwordFileFlag != nil && c.passwordFileFlag.Changed && !c.passwordFlag.Changed {
		c.Password = ""
	}
	if err := c.Validate(); err != nil {
		return withCode(ExitUsage, err)
	}
	return nil
}

// name returns the key prefix for a user-given name.
func (c *config) name(n string) (string, error) {
	if strings.Trim(n, "/ ") == "" {
		return "", usagef("the name %q is empty: give a lock name such as jobs/nightly", n)
	}
	return c.namespace + n, nil
}

// connect returns a client that has answered a count-only read of
// probeKey, or an ExitUnavailable error that says why not. probeKey must be
// a key the command is going to use anyway: a user's role may cover only
// the command's prefix.
func (c *config) connect(ctx context.Context, probeKey string) (*clientv3.Client, error) {
	cli, err := c.newClient(ctx)
	if err != nil {
		return nil, err
	}
	if probeKey == "" {
		probeKey = "\x00" // the first key there can be: etcd refuses an empty one
	}
	if err := c.Check(ctx, cli, probeKey); err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, interrupted()
		}
		return nil, unavailable(c.Endpoints, err)
	}
	return cli, nil
}

// interrupted is the error of a command stopped by a signal while it was
// still connecting to etcd.
func interrupted() error {
	return withCode(ExitInterrupted, errors.New("interrupted while connecting to etcd"))
}

// newClient builds the client, asking for the password on the terminal
// when --user has none.
func (c *config) newClient(ctx context.Context) (*clientv3.Client, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	cli, err := c.New(ctx)
	if errors.Is(err, etcdclient.ErrNoPassword) {
		if err := c.askPassword(); err != nil {
			return nil, err
		}
		cli, err = c.New(ctx)
	}
	switch {
	case errors.Is(err, etcdclient.ErrConfig):
		return nil, withCode(ExitUsage, err)
	case err != nil && ctx.Err() != nil:
		return nil, interrupted()
	case err != nil:
		return nil, unavailable(c.Endpoints, err)
	}
	return cli, nil
}

// askPassword reads --user's password from the terminal, as etcdctl does,
// or says how to give it when stdin is not a terminal.
func (c *config) askPassword() error {
	user, _, _ := strings.Cut(c.User, ":")
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("--user %s has no password: give --password-file FILE, $LOCKCTL_PASSWORD, or --password (or run lockctl on a terminal to be asked)", user)
	}
	fmt.Fprintf(c.stderr, "Password for etcd user %s: ", user)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return usagef("reading the password of --user %s: %w", user, err)
	}
	c.User, c.Password = user, string(pw)
	return nil
}

// unavailable turns a failure to reach or use etcd into ExitUnavailable
// with the cause in words: etcdclient's diagnosis when it has one.
func unavailable(eps []string, err error) error {
	if !errors.Is(err, etcdclient.ErrPermission) && !errors.Is(err, etcdclient.ErrAuth) &&
		!errors.Is(err, etcdclient.ErrTLS) && !errors.Is(err, etcdclient.ErrUnreachable) {
		// A request's own error: let etcdclient explain what it can.
		switch e := (etcdclient.Config{Endpoints: eps}).Explain(err, "use", "the key"); {
		case errors.Is(e, etcdclient.ErrPermission):
			return withCode(ExitUnavailable, fmt.Errorf("%w (permission denied by etcd RBAC: grant the user's role readwrite on the prefix of the name)", err))
		case errors.Is(e, etcdclient.ErrAuth):
			return withCode(ExitUnavailable, fmt.Errorf("%w (check --user and --password)", err))
		}
		return withCode(ExitUnavailable, fmt.Errorf("cannot reach etcd at %s: %w; is etcd running there? (try 'lockctl dev' for a local one)", strings.Join(eps, ","), err))
	}
	if errors.Is(err, etcdclient.ErrTLS) || errors.Is(err, etcdclient.ErrUnreachable) {
		err = fmt.Errorf("cannot reach %w", err)
	}
	return withCode(ExitUnavailable, err)
}

func newRoot(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	cfg := &config{stdin: stdin, stderr: stderr}
	root := &cobra.Command{
		Use:   "lockctl",
		Short: "Run commands under etcd locks, semaphores and leader elections",
		Long: `lockctl runs a command only while it holds a lock, a semaphore slot or a leadership
in etcd, so that cron jobs, deploy steps and singleton workers never overlap across hosts.

It never hangs on an unreachable etcd (--dial-timeout, --command-timeout), forwards
signals to the command's process group, stops the command if the hold is lost, and
revokes its lease on exit so the next run does not wait.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cfg.flags(root)
	root.AddCommand(
		newRunCmd(cfg),
		newElectCmd(cfg),
		newStatusCmd(cfg),
		newLsCmd(cfg),
		newReleaseCmd(cfg),
		newRegisterCmd(cfg),
		newDiscoverCmd(cfg),
		newConsoleCmd(cfg),
		newDevCmd(),
		newVersionCmd(),
	)
	root.SetContext(ctx)
	root.Version = versionString()
	root.SetVersionTemplate("lockctl {{.Version}}\n")
	// cobra's own errors become usage errors through its hooks: bad flags,
	// wrong arguments, and an unknown subcommand (the root's arguments).
	root.SetFlagErrorFunc(cobraUsage)
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return cobraUsage(cmd, fmt.Errorf("unknown command %q%s", args[0], hint))
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	wrapArgs(root)
	return root
}

// cobraUsage makes an error of cobra's (a flag it could not parse, wrong
// arguments) a usage error that points at the command's help.
func cobraUsage(cmd *cobra.Command, err error) error {
	return withCode(ExitUsage, fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath()))
}

// wrapArgs makes the argument validators of cmd's subcommands, at any
// depth, return usage errors.
func wrapArgs(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if v := c.Args; v != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := v(cmd, args)
				if err == nil || codeOf(err) == ExitUsage {
					return err
				}
				return cobraUsage(cmd, err)
			}
		}
		wrapArgs(c)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(ctx, stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ee.code // the child's own code: nothing to print
	}
	fmt.Fprintf(stderr, "lockctl: %v\n", err)
	return codeOf(err)
}
