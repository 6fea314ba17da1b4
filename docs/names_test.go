// Package docs holds grainchat's documentation; its test keeps the documents
// honest about the tests they cite.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	// A test cited in a document: TestName, Test_name/sub, FuzzX, BenchmarkY.
	citedTest = regexp.MustCompile(`\b((?:Test|Fuzz|Benchmark)[A-Z0-9_][A-Za-z0-9_]*)`)
	// A test defined in Go.
	definedTest = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
)

// prefixOfOne reports whether name starts some defined test's name: a
// document may cite a family of tests as a -run pattern (TestCluster).
func prefixOfOne(name string, defined map[string]bool) bool {
	for d := range defined {
		if strings.HasPrefix(d, name) {
			return true
		}
	}
	return false
}

// Every test, fuzz target and benchmark that README.md, SECURITY.md or a
// document under docs/ names exists in the repository: a renamed test leaves
// no stale citation behind.
func TestCitedTestsExist(t *testing.T) {
	root := ".."
	defined := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range definedTest.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 100 {
		t.Fatalf("found only %d tests: is the repository layout as expected?", len(defined))
	}
	docs, _ := filepath.Glob("*.md")
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "SECURITY.md"))
	cited := 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		missing := map[string]bool{}
		for _, m := range citedTest.FindAllSubmatch(b, -1) {
			cited++
			if name := string(m[1]); !defined[name] && !prefixOfOne(name, defined) {
				missing[name] = true
			}
		}
		var names []string
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t.Errorf("%s cites %s, which no _test.go file defines", doc, n)
		}
	}
	if cited < 50 {
		t.Fatalf("found only %d citations in %v", cited, docs)
	}
}
