// Command svcmain is the agent wired the way cmd/pwbi-agent's `run` is
// meant to be: agent.Run under service.RunService. The opt-in service test
// (service_integration_test.go) installs it as the pwbi-agent service.
//
//	svcmain run --config PATH
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/pwbi/edge-agent/agent"
	"github.com/pwbi/edge-agent/agent/service"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "run" || os.Args[2] != "--config" {
		fmt.Fprintln(os.Stderr, "usage: svcmain run --config PATH")
		os.Exit(2)
	}
	cfg := os.Args[3]
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "service")
	err := service.RunService(cfg, log, func(ctx context.Context) error {
		return agent.Run(ctx, agent.Options{ConfigPath: cfg, Stderr: os.Stderr})
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcmain: %v\n", err)
		os.Exit(1)
	}
}
