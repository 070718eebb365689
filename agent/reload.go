package agent

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/configwatch"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/logging"
)

// Reload implements localapi.Backend (POST /v1/reload): read the config
// file now and apply it as a watched change would be. The file is read like
// the watcher reads it (config.ReadFileSafe), so a FIFO or a link to a
// device at the config path is refused at once instead of hanging the
// request.
func (a *Agent) Reload(ctx context.Context) localapi.ReloadResult {
	data, _, err := config.ReadFileSafe(a.cfgPath, "config file", config.MaxFileSize)
	if err != nil {
		return a.reject("manual", configReadProblem(a.cfgPath, err))
	}
	res := a.apply(data, "manual")
	if res.Error == "" && a.watcher != nil {
		a.watcher.SetHash(configwatch.Hash(data))
	}
	return res
}

// configReadProblem says in a sentence why the config file at path could not
// be read.
func configReadProblem(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "the config file is missing: " + path
	case errors.Is(err, config.ErrNotRegular), errors.Is(err, config.ErrTooLarge):
		return err.Error() // "config file … is not a regular file (named pipe)"
	}
	return "cannot read the config file: " + err.Error()
}

// apply validates the whole file and only then swaps it in (SPEC §3). The
// one step that can fail after validation, binding a moved local API, is
// done before anything changes, so a reload is all or nothing. Buffered
// and in-flight data are untouched: components take their new settings
// from their next step.
func (a *Agent) apply(data []byte, source string) localapi.ReloadResult {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.config()

	cfg, err := config.Parse(a.cfgPath, data)
	if err != nil {
		return a.reject(source, problemsText(err))
	}
	if cfg.SHA256 == old.SHA256 {
		a.mu.Lock()
		hadErr := a.cfgErr != ""
		a.cfgErr = ""
		gen := a.gen
		a.mu.Unlock()
		if hadErr {
			a.log.Info("Config file is back to the running configuration", "source", source)
			a.metrics.SetConfig(gen, true)
		}
		return localapi.ReloadResult{Unchanged: true, Generation: gen, RestartRequired: a.restartRequired()}
	}

	restart := cfg.RestartRequired(old)
	if slices.Contains(restart, "agent.data_dir") {
		// The store stays where it is until the agent restarts.
		cfg.Agent.DataDir = old.Agent.DataDir
	}
	var ln net.Listener
	if cfg.LocalAPI.Listen != old.LocalAPI.Listen {
		if ln, err = localapi.Listen(cfg.LocalAPI.Listen); err != nil {
			return a.reject(source, "local_api.listen: "+err.Error())
		}
	}
	// A moved checkout listener binds here too, before anything changes
	// (checkout.go); if it cannot, nothing changes.
	coLn, err := a.co.prepare(old, cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return a.reject(source, err.Error())
	}

	if err := logging.SetLevel(a.logs.Level, cfg.Agent.LogLevel); err != nil {
		a.log.Warn("Log level not applied", "err", err) // validated already; cannot happen
	}
	a.store.SetMaxPendingBytes(int64(cfg.Upstream.MaxPendingMB) << 20)
	a.applySinks(cfg) // enable, disable, re-configure sinks (delivery.go)
	mokaChanged := !reflect.DeepEqual(old.Moka, cfg.Moka) || old.Agent.ID != cfg.Agent.ID
	var mokaErr string
	if mokaChanged {
		conn, why := a.mokaConnector(cfg)
		a.moka.Update(conn, syncConfig(cfg))
		mokaErr = why
	}
	// Before the generation moves: whoever sees it sees the new tablets.
	a.co.apply(cfg, coLn) // checkout.go

	a.mu.Lock()
	a.cfg = cfg
	a.gen++
	a.loadedAt = time.Now()
	a.cfgErr = ""
	a.restart = restart
	if mokaChanged {
		a.mokaErr = mokaErr
	}
	gen := a.gen
	a.mu.Unlock()
	// The metrics first: a client that reaches a moved API sees the new
	// generation there.
	a.metrics.SetConfig(gen, true)
	if ln != nil {
		a.serveAPI(ln)
	}
	a.log.Info("Configuration applied", "source", source, "generation", gen,
		"changed", changedSections(old, cfg), "restart_required", restart)
	return localapi.ReloadResult{Applied: true, Generation: gen, RestartRequired: orEmpty(restart)}
}

// reject records a failed load: the running configuration stays.
func (a *Agent) reject(source, msg string) localapi.ReloadResult {
	a.mu.Lock()
	a.cfgErr = msg
	gen := a.gen
	a.mu.Unlock()
	a.metrics.SetConfig(gen, false)
	a.log.Error("Config reload failed; keeping the running configuration", "source", source, "err", msg)
	return localapi.ReloadResult{Error: msg, Generation: gen, RestartRequired: a.restartRequired()}
}

func (a *Agent) restartRequired() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return orEmpty(slices.Clone(a.restart))
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// problemsText renders config problems on one line for status and logs.
func problemsText(err error) string {
	var probs config.Problems
	if errors.As(err, &probs) {
		parts := make([]string, len(probs))
		for i, p := range probs {
			parts[i] = p.Error()
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// changedSections names the top-level sections (the struct fields of
// config.Config, by their TOML name) that differ, for the log. It walks the
// type, so a section added to the configuration is covered without a list
// to keep up to date here.
func changedSections(old, cfg *config.Config) []string {
	var out []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cfg).Elem()
	for i := range ov.NumField() {
		f := ov.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if f.Type.Kind() != reflect.Struct || name == "" || name == "-" {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
