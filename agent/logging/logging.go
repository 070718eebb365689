// Package logging sets up the agent's structured log: human-readable text on
// stderr (what a technician sees when running in the foreground, and what
// journald captures) and JSON lines in a size-rotated file under
// <data_dir>/logs, which survives after the terminal is gone.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// FileName is the name of the current log file inside the logs directory.
const FileName = "agent.log"

// Rotation limits: a cafe PC has small disks and nobody cleans them.
const (
	maxSizeMB  = 10
	maxBackups = 5
	maxAgeDays = 30
)

// Logger is the agent's root logger and the knobs a reload may turn.
type Logger struct {
	*slog.Logger
	Level *slog.LevelVar
	file  *lumberjack.Logger
}

// New returns a logger writing to stderr and, when dir is not empty, to a
// rotated file in dir (created if missing).
func New(level string, stderr io.Writer, dir string) (*Logger, error) {
	lv := new(slog.LevelVar)
	if err := SetLevel(lv, level); err != nil {
		return nil, err
	}
	hopts := &slog.HandlerOptions{Level: lv}
	handlers := []slog.Handler{slog.NewTextHandler(stderr, hopts)}
	l := &Logger{Level: lv}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create log directory: %w", err)
		}
		l.file = &lumberjack.Logger{
			Filename:   filepath.Join(dir, FileName),
			MaxSize:    maxSizeMB,
			MaxBackups: maxBackups,
			MaxAge:     maxAgeDays,
			Compress:   true,
		}
		handlers = append(handlers, slog.NewJSONHandler(l.file, hopts))
	}
	l.Logger = slog.New(slog.NewMultiHandler(handlers...))
	return l, nil
}

// SetLevel parses name (debug, info, warn, error) into lv.
func SetLevel(lv *slog.LevelVar, name string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(name))); err != nil {
		return fmt.Errorf("log level %q: %w", name, err)
	}
	lv.Set(level)
	return nil
}

// Close flushes and closes the log file.
func (l *Logger) Close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}
