// Derived from protoactor-go's cluster/clusterproviders/etcd/node.go
// (github.com/asynkron/protoactor-go v0.0.0-20240822202345-3c0e61ca19c9),
// Copyright Asynkron AB, Apache License 2.0 (LICENSE in this directory).
// Changed for grainchat: unexported, without the unused Meta map; the JSON
// a member registers is the same as upstream's.

package etcd

import (
	"encoding/json"
	"strconv"

	"github.com/asynkron/protoactor-go/cluster"
)

// node is what a member registers under its key, as JSON (upstream's
// format, so that nodes with either provider read each other).
type node struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Host    string   `json:"host"`
	Address string   `json:"address"`
	Port    int      `json:"port"`
	Kinds   []string `json:"kinds"`
	Alive   bool     `json:"alive"`
}

func newNode(id, host string, port int, kinds []string) *node {
	return &node{ID: id, Name: id, Address: host, Host: host, Port: port, Kinds: kinds, Alive: true}
}

func (n *node) host() string {
	if n.Host == "" {
		return n.Address
	}
	return n.Host
}

// addr is the member's cluster address, as cluster.Member.Address spells it.
func (n *node) addr() string { return n.host() + ":" + strconv.Itoa(n.Port) }

func (n *node) member() *cluster.Member {
	kinds := n.Kinds
	if kinds == nil {
		kinds = []string{}
	}
	return &cluster.Member{Id: n.ID, Host: n.host(), Port: int32(n.Port), Kinds: kinds}
}

func (n *node) serialize() ([]byte, error) { return json.Marshal(n) }

func parseNode(data []byte) (*node, error) {
	var n node
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	return &n, nil
}
