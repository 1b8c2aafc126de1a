// Command yzpay is the single-binary distribution and the operator's CLI:
// serve runs the gateway, tradefetcher and notifier in one process; migrate,
// sandbox, deliveries and receipts are the tools around it. Run `yzpay help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `yzpay relays Youzan QR-code payments (WeChat Pay, Alipay) to your server.

Usage:
  yzpay serve [--sandbox]     run gateway, tradefetcher and notifier in one process
  yzpay migrate               apply the store's migrations and exit
  yzpay sandbox [--addr A]    run the Youzan sandbox server on its own
  yzpay deliveries list [--state failed|pending|delivered|superseded] [--endpoint URL]
  yzpay deliveries replay (EVENT_ID... | --all-failed) [--endpoint URL]
  yzpay deliveries attempts EVENT_ID   every attempt of an event, with answers
  yzpay orders timeline ORDER_ID       what happened to an order, in time order
  yzpay receipts list [--state dead|parked] [--limit N]
  yzpay receipts replay TID...
  yzpay version               print the version
  yzpay help [command]        this text, or a command's flags

Configuration comes from the environment and an optional ./envrc file;
see README.md for every variable.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"serve":      cmdServe,
		"migrate":    cmdMigrate,
		"sandbox":    cmdSandbox,
		"deliveries": cmdDeliveries,
		"receipts":   cmdReceipts,
		"orders":     cmdOrders,
		"version": func(_ context.Context, _ []string, out, _ io.Writer) int {
			fmt.Fprintln(out, "yzpay", versionString())
			return 0
		},
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				return c(ctx, []string{"--help"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "yzpay: unknown command %q\n\n%s", name, usage)
		return 2
	}
	return c(ctx, args[1:], stdout, stderr)
}
