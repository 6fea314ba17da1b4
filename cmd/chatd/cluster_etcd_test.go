package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd membership of actors/membership/etcd (issue 18), on real chatd
// processes and a real etcd.

// startEtcdClusterAt starts n nodes registered in the etcd at endpoint
// (cluster name "etcd-test", prefix /grainchat).
func startEtcdClusterAt(t *testing.T, endpoint string, n int, extra ...string) *testCluster {
	t.Helper()
	return startCluster(t, chatproc.ClusterConfig{Provider: "etcd", Nodes: n, DatabaseURL: newDatabase(t),
		Name: "etcd-test", EtcdEndpoint: endpoint, ExtraArgs: extra})
}

// members is the node's view of the cluster (member addresses, sorted) and
// its own cluster address; nil when it does not answer.
func members(n *nodeProc) (self string, addrs []string) {
	st, err := fetchStatus(context.Background(), "http://"+n.node.Addr())
	if err != nil || !st.Member {
		return "", nil
	}
	return st.Node, st.Members
}

// waitMembers waits until every node in nodes sees exactly the cluster
// addresses of nodes.
func waitMembers(t *testing.T, d time.Duration, what string, nodes ...*nodeProc) {
	t.Helper()
	waitFor(t, d, what, func() bool {
		var want []string
		views := make([][]string, len(nodes))
		for i, n := range nodes {
			self, addrs := members(n)
			if self == "" {
				return false
			}
			want, views[i] = append(want, self), addrs
		}
		slices.Sort(want)
		for _, v := range views {
			if !slices.Equal(v, want) {
				return false
			}
		}
		return true
	})
}

// A SIGKILLed node leaves the survivors' topology as soon as their
// connection to it breaks: they dial its cluster port, are refused, and
// delete its key. Without the probe (upstream's behaviour, and
// --etcd-probe-timeout 0) only its lease removes it: at least
// lease TTL - TTL/3 (its last renewal) after the kill, 2 s with the 3 s
// default. The probe's bound (1.2 s) is loose for a loaded machine under
// -race; measured: 20–260 ms (docs/BENCHMARKS.md).
func TestClusterEtcdKilledNodeLeaves(t *testing.T) {
	endpoint := startEtcd(t)
	for _, tc := range []struct {
		name     string
		args     []string
		min, max time.Duration
	}{
		{"probe", nil, 0, 1200 * time.Millisecond},
		{"lease only", []string{"--etcd-probe-timeout", "0"}, 1900 * time.Millisecond, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, chatproc.ClusterConfig{Provider: "etcd", Nodes: 3, DatabaseURL: newDatabase(t),
				Name: fmt.Sprintf("etcd-kill-%d", time.Now().UnixNano()), EtcdEndpoint: endpoint, ExtraArgs: tc.args})
			waitMembers(t, 30*time.Second, "three members everywhere", c.nodes...)
			// The survivors gossip with node 3 every 300 ms, so each holds a
			// connection to it by now: that connection breaking is the
			// signal.
			killed := time.Now()
			c.nodes[2].Kill()
			waitMembers(t, 15*time.Second, "node 3 gone from the survivors' view", c.nodes[0], c.nodes[1])
			took := time.Since(killed)
			t.Logf("%s: node 3 left the survivors' topology %v after SIGKILL", tc.name, took)
			if took < tc.min || took > tc.max {
				t.Errorf("%s: node 3 left after %v, want between %v and %v", tc.name, took, tc.min, tc.max)
			}
			if tc.name == "probe" && !strings.Contains(c.nodes[0].out.String()+c.nodes[1].out.String(), "removed its registration") {
				t.Errorf("no survivor logged the removal")
			}
		})
	}
}

// A live node whose registration vanishes — its key deleted (a peer's
// false suspicion) or its lease revoked (as when it expires during a pause
// or while etcd is unreachable) — registers again under a new member id and
// is back in every node's topology, and the cluster serves through it.
// Upstream's provider dropped the node from its own view for good, and the
// others block a departed member id forever.
func TestClusterEtcdRegistrationComesBack(t *testing.T) {
	endpoint := startEtcd(t)
	c := startEtcdClusterAt(t, endpoint, 3)
	waitMembers(t, 30*time.Second, "three members everywhere", c.nodes...)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	prefix := "/grainchat/etcd-test/"
	// registration is the key and lease of the node at cluster address addr.
	registration := func(addr string) (key string, lease clientv3.LeaseID) {
		resp, err := cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			var n struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			}
			if json.Unmarshal(kv.Value, &n) == nil && fmt.Sprintf("%s:%d", n.Host, n.Port) == addr {
				return string(kv.Key), clientv3.LeaseID(kv.Lease)
			}
		}
		return "", 0
	}

	for i, how := range []string{"key deleted", "lease revoked"} {
		n := c.nodes[i+1]
		addr, _ := members(n)
		key, lease := registration(addr)
		if key == "" {
			t.Fatalf("%s: no registration of %s", how, addr)
		}
		if how == "key deleted" {
			_, err = cli.Delete(ctxT(t, 5*time.Second), key)
		} else {
			_, err = cli.Revoke(ctxT(t, 5*time.Second), lease)
		}
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, how+": registered again under a new id", func() bool {
			k, _ := registration(addr)
			return k != "" && k != key
		})
		waitMembers(t, 15*time.Second, how+": three members everywhere again", c.nodes...)
		k, _ := registration(addr)
		if !strings.HasPrefix(k, key+".") {
			t.Errorf("%s: new key %q, want the old one %q with a generation", how, k, key)
		}
		if !strings.Contains(n.out.String(), "registering again under a new member id") {
			t.Errorf("%s: the node did not log its re-registration", how)
		}
	}

	// The cluster serves through the nodes that came back: a visitor on
	// each node reaches the admins on the others.
	admin := dialURL(t, c.nodes[0].URL(), "s-1", "Ann", true)
	for i, n := range c.nodes {
		v := dialURL(t, n.URL(), fmt.Sprintf("v-%d", i), "Visitor", false)
		text := fmt.Sprintf("hello through node %d", i+1)
		if err := v.Send(map[string]any{"message": text, "client_msg_id": "m"}); err != nil {
			t.Fatal(err)
		}
		waitMessage(t, admin, text)
	}
}
