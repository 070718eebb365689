package tray

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/pwbi/edge-agent/agent/config"
)

// Settings are what the tray needs from the agent's configuration.
type Settings struct {
	ConfigPath string // the agent's config file ("Open config file")
	APIAddr    string // local_api.listen
	DataDir    string // agent.data_dir
	LogsDir    string // <data_dir>/logs, where the agent writes agent.log
	// Language is agent.language ("auto", "id", "en"; "" when not set or
	// not readable): the menu's language until the agent reports its own.
	Language string
}

// fileSettings is the part of the config file the tray reads.
type fileSettings struct {
	Agent struct {
		DataDir  string `toml:"data_dir"`
		Language string `toml:"language"`
	} `toml:"agent"`
	LocalAPI struct {
		Listen string `toml:"listen"`
	} `toml:"local_api"`
}

// LoadSettings finds the local API address, the data directory and the
// language setting of the agent whose config file is at path
// (config.DefaultPath() when empty).
//
// The tray is not the agent: it runs as the desktop user, who may not be
// allowed to read the file (the .deb makes it readable by root and the
// pwbi-agent group only, since it holds secrets), and it must keep working
// when the file has an error the agent is reporting. So it reads these
// keys leniently, without validating the rest or reading *_file secrets,
// and falls back to the defaults; the error says why, for the log.
func LoadSettings(path string) (Settings, error) {
	if path == "" {
		path = config.DefaultPath()
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	s := Settings{ConfigPath: path}
	var fs fileSettings
	data, err := os.ReadFile(path)
	if err == nil {
		if _, derr := toml.Decode(string(data), &fs); derr != nil {
			err = fmt.Errorf("%s: %w", path, derr)
			fs = fileSettings{}
		}
	}
	s.APIAddr = fs.LocalAPI.Listen
	if s.APIAddr == "" {
		s.APIAddr = config.Default().LocalAPI.Listen
	}
	s.Language = fs.Agent.Language
	s.DataDir = fs.Agent.DataDir
	switch {
	case s.DataDir == "":
		s.DataDir = config.DefaultDataDir()
	case !filepath.IsAbs(s.DataDir):
		// As the agent does: relative to the config file's directory.
		s.DataDir = filepath.Join(filepath.Dir(path), s.DataDir)
	}
	s.LogsDir = filepath.Join(s.DataDir, "logs")
	if err != nil {
		return s, fmt.Errorf("using defaults for the agent's address and data directory: %w", err)
	}
	return s, nil
}
