package cli

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// Catalogue ids of the texts of this file that tests name.
const (
	msgAddrFromFile = "CliAddrFromFile"
	msgAddrDefault  = "CliAddrDefault"
)

// reached is what a command that talks to the running agent needs of the
// configuration: the local API address and the outlets' time zone.
type reached struct {
	listen string
	loc    *time.Location
}

// reach finds the running agent. With a valid config file that is its
// local_api.listen. With a broken one — exactly when a technician needs
// status, sync and queue, while the agent goes on with its previous
// settings — it reads the two keys it needs leniently from the file, or
// falls back to the defaults, and says so on stderr.
func (e *env) reach(cfgFlag string) reached {
	path := configPath(cfgFlag)
	cfg, err := config.Load(path)
	if err == nil {
		return reached{listen: cfg.LocalAPI.Listen, loc: cfg.Moka.Location()}
	}
	def := config.Default()
	r := reached{listen: def.LocalAPI.Listen, loc: def.Moka.Location()}
	how := msgAddrDefault
	var lenient struct {
		LocalAPI struct {
			Listen string `toml:"listen"`
		} `toml:"local_api"`
		Moka struct {
			Timezone string `toml:"timezone"`
		} `toml:"moka"`
	}
	if data, _, rerr := config.ReadFileSafe(path, "config file", config.MaxFileSize); rerr == nil {
		if _, derr := toml.Decode(string(data), &lenient); derr == nil {
			if l := lenient.LocalAPI.Listen; l != "" && loopbackAddr(l) {
				r.listen, how = l, msgAddrFromFile
			}
			if loc, lerr := time.LoadLocation(lenient.Moka.Timezone); lenient.Moka.Timezone != "" && lerr == nil {
				r.loc = loc
			}
		}
	}
	fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.t("CliBrokenConfig", map[string]any{"Path": path, "Addr": r.listen, "How": e.t(how)}))
	return r
}

// loopbackAddr reports whether addr is host:port on the loopback interface.
func loopbackAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	return err == nil && port != "" && localapi.IsLoopbackHost(host)
}

// sinceSyntaxError is a --since that is neither a date nor "Nd".
type sinceSyntaxError struct{ msg string }

func (e *sinceSyntaxError) Error() string { return e.msg }

var daysBack = regexp.MustCompile(`^([0-9]{1,4})d$`)

// parseSince is parseSinceIn with English errors.
func parseSince(s string, today time.Time, maxDays int) (time.Time, error) {
	return parseSinceIn(i18n.New(i18n.English), s, today, maxDays)
}

// parseSinceIn reads --since: a date (YYYY-MM-DD) or a number of days back
// ("30d"; "0d" is today), in today's location. The day must be between
// maxDays days ago and today; the error, in p's language, names the
// earliest allowed day.
func parseSinceIn(p *i18n.Printer, s string, today time.Time, maxDays int) (time.Time, error) {
	loc := today.Location()
	midnight := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc)
	earliest := midnight.AddDate(0, 0, -maxDays)
	var day time.Time
	switch m := daysBack.FindStringSubmatch(s); {
	case s == "":
		return time.Time{}, &sinceSyntaxError{p.T("CliSinceRequired")}
	case m != nil:
		n, _ := strconv.Atoi(m[1])
		day = midnight.AddDate(0, 0, -n)
	default:
		var err error
		if day, err = time.ParseInLocation(time.DateOnly, s, loc); err != nil {
			return time.Time{}, &sinceSyntaxError{p.T("CliSinceSyntax", map[string]any{"Value": strconv.Quote(s),
				"Example": midnight.AddDate(0, 0, -30).Format(time.DateOnly)})}
		}
	}
	if day.After(midnight) {
		return time.Time{}, errors.New(p.T("CliSinceFuture", map[string]any{"Day": day.Format(time.DateOnly), "Today": midnight.Format(time.DateOnly)}))
	}
	if day.Before(earliest) {
		return time.Time{}, errors.New(p.T("CliSinceTooFar", map[string]any{"Value": s, "Max": maxDays, "Earliest": earliest.Format(time.DateOnly)}))
	}
	return day, nil
}
