package chatproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/prereq"
)

// Without etcd on PATH, StartEtcd says what to install (ErrEtcdNotInstalled,
// also through StartCluster); with it, the etcd answers /health and Stop
// removes its temporary data directory.
func TestStartEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := exec.LookPath("etcd"); err != nil {
		_, err := StartEtcd(ctx, EtcdConfig{})
		if !errors.Is(err, ErrEtcdNotInstalled) {
			t.Errorf("StartEtcd without etcd: %v, want ErrEtcdNotInstalled", err)
		}
		_, err = StartCluster(ctx, ClusterConfig{Node: NodeConfig{Binary: "/nonexistent"}, Provider: "etcd", Nodes: 1, DatabaseURL: "postgres://x"})
		if !errors.Is(err, ErrEtcdNotInstalled) {
			t.Errorf("StartCluster without etcd: %v, want ErrEtcdNotInstalled", err)
		}
	}
	bin := prereq.LookPath(t, "the etcd tests need etcd", "etcd-server", "etcd")
	e, err := StartEtcd(ctx, EtcdConfig{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.tempDir
	if status := httpStatus("http://" + e.Endpoint() + "/health"); status != 200 {
		t.Errorf("/health answered %d", status)
	}
	e.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory %s still there: %v", dir, err)
	}
}
