package browsertest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestArtifactsDir(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s has no go.mod", root)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "browsertest")); err != nil {
		t.Fatalf("unexpected module root %s", root)
	}
	t.Setenv(ArtifactsEnv, "")
	dir, err := ArtifactsDir()
	if err != nil || dir != filepath.Join(root, "testdata", "artifacts") {
		t.Fatalf("ArtifactsDir = %q, %v", dir, err)
	}
	other := t.TempDir()
	t.Setenv(ArtifactsEnv, other)
	if dir, err := ArtifactsDir(); err != nil || dir != other {
		t.Fatalf("with $%s: %q, %v", ArtifactsEnv, dir, err)
	}
}

func TestLogBufferKeepsTheTail(t *testing.T) {
	var b logBuffer
	for range 3 {
		b.Write(make([]byte, maxLog/2))
	}
	b.Write([]byte("last line"))
	s := b.String()
	if len(s) != maxLog || s[len(s)-9:] != "last line" {
		t.Fatalf("len %d, tail %q", len(s), s[len(s)-9:])
	}
}
