package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/chatproc"
	"github.com/grainchat/grainchat/cmd/internal/netlab"
)

// network is where the nodes run: on loopback, or (--partition) each in a
// network namespace of a netlab, reaching PostgreSQL and etcd through
// proxies that can cut one node off.
type network struct {
	databaseURL  string // as the nodes reach it
	etcdEndpoint string // empty: chatproc starts a throwaway etcd
	lab          *netlab.Lab
	db, etcd     *netlab.Proxy
	etcdProc     *chatproc.Etcd
}

func newNetwork(ctx context.Context, o options) (nw *network, err error) {
	nw = &network{databaseURL: o.databaseURL}
	if o.partition == "" {
		return nw, nil
	}
	defer func() {
		if err != nil {
			nw.close()
		}
	}()
	if nw.lab, err = netlab.New(ctx, o.nodes); err != nil {
		return nil, err
	}
	u, err := url.Parse(o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	if nw.db, err = netlab.Listen(net.JoinHostPort(nw.lab.HostIP(), "0"), target); err != nil {
		return nil, err
	}
	u.Host = nw.db.Addr()
	nw.databaseURL = u.String()
	if o.provider == "etcd" {
		if nw.etcdProc, err = chatproc.StartEtcd(ctx, chatproc.EtcdConfig{}); err != nil {
			return nil, err
		}
		if nw.etcd, err = netlab.Listen(net.JoinHostPort(nw.lab.HostIP(), "0"), nw.etcdProc.Endpoint()); err != nil {
			return nil, err
		}
		nw.etcdEndpoint = nw.etcd.Addr()
	}
	return nw, nil
}

// cut cuts node i off from what --partition names (kind), or with cut
// false heals that.
func (nw *network) cut(ctx context.Context, kind string, i int, cut bool) error {
	if kind == "peers" {
		if cut {
			return nw.lab.Isolate(ctx, i)
		}
		return nw.lab.Rejoin(ctx, i)
	}
	p := nw.db
	if kind == "etcd" {
		p = nw.etcd
	}
	if cut {
		p.Cut(nw.lab.NodeIP(i))
	} else {
		p.Heal(nw.lab.NodeIP(i))
	}
	return nil
}

// close stops the proxies and etcd and removes the lab (after the nodes
// have stopped: run's deferred calls close the cluster first).
func (nw *network) close() {
	for _, p := range []*netlab.Proxy{nw.db, nw.etcd} {
		if p != nil {
			_ = p.Close()
		}
	}
	if nw.etcdProc != nil {
		nw.etcdProc.Stop()
	}
	if nw.lab != nil {
		_ = nw.lab.Close()
	}
}

// cutRecord is what the clients saw during one cut.
type cutRecord struct {
	CutSeconds float64 `json:"cut_seconds"`
	// Acknowledged posts during the cut, of every visitor and of the
	// visitors whose socket was on the cut node.
	Acked       int `json:"acked"`
	AckedOnNode int `json:"acked_on_node"`
	// Visitors with at least one post acknowledged during the cut, of
	// all and of those on the cut node (out of Sockets).
	Served       int `json:"visitors_served"`
	ServedOnNode int `json:"visitors_on_node_served"`
}

// partition is one step of --partition: it cuts node k off for --cut while
// the traffic goes on, heals, and measures the time every conversation
// takes to acknowledge a post made after the heal.
func (c *chaos) partition(ctx context.Context, k int) (killRecord, error) {
	victim := c.cl.Nodes[k]
	rec := killRecord{N: k + 1, Action: "cut-" + c.o.partition}
	var during cutRecord
	down := func() error {
		onNode := make([]bool, len(c.visitors))
		before := make([]int64, len(c.visitors))
		for i, v := range c.visitors {
			onNode[i] = v.r.URL() == victim.URL()
			before[i] = v.total.Load()
		}
		if err := c.net.cut(ctx, c.o.partition, k, true); err != nil {
			return err
		}
		c.progress("cut %d/%d: %s off from %s for %v", k+1, c.steps(), victim.Name(), c.o.partition, c.o.cutFor)
		start := time.Now()
		slept := sleep(ctx, c.o.cutFor)
		for i, v := range c.visitors {
			n := int(v.total.Load() - before[i])
			during.Acked += n
			if n > 0 {
				during.Served++
			}
			if onNode[i] {
				during.AckedOnNode += n
				if n > 0 {
					during.ServedOnNode++
				}
			}
		}
		during.CutSeconds = time.Since(start).Seconds()
		// Heal even when ctx ended: the lab's routes outlive the run.
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(slept, c.net.cut(hctx, c.o.partition, k, false))
	}
	rec, err := c.disrupt(ctx, rec, victim, down, func(context.Context) error { return nil })
	rec.Cut = &during
	return rec, err
}
