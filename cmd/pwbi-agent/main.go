// Command pwbi-agent is the PWBI Edge Agent service binary. See
// cmd/pwbi-agent/internal/cli for the commands and agent for what runs.
package main

import (
	"context"
	"os"

	"github.com/pwbi/edge-agent/cmd/pwbi-agent/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
