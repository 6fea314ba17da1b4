package wire

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// wire is the protocol's encoding and nothing else: it imports only the
// standard library, so that actors use it only to encode and any client
// (tests, chatbench) can use it without the server's dependencies
// (docs/ARCHITECTURE.md).
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: package wire may import only the standard library", name, path)
			}
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("checked %d files: run from the package directory", checked)
	}
}
