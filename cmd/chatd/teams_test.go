package main

// Teams (docs/PROTOCOL.md, "Teams"): a visitor's token names the team that
// serves them; a staff member's token names the teams they serve. Staff with
// teams see, live and in their inbox pages, those teams' conversations and
// those without a team; staff without the claim see every conversation.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/wsclient"
)

// mintTeams signs a token with a team claim (visitors) or a teams claim
// (staff; nil: none).
func mintTeams(t testing.TB, sub, name string, admin bool, team string, teams []string) string {
	t.Helper()
	iss, err := auth.NewIssuer(auth.Config{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: sub, Name: name, Admin: admin, Team: team, Teams: teams}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// messageTexts are the texts of c's message frames, in order.
func messageTexts(c *wsclient.Client) []string {
	var out []string
	for _, f := range c.Frames() {
		if f.Type() == "" || f.Type() == "message" {
			if m := f.String("message"); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// inboxTeams maps each conversation of an inbox frame to its team ("" when
// the entry has none).
func inboxTeams(f wsclient.Frame) map[int64]string {
	out := map[int64]string{}
	list, _ := f.Fields["conversations"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, _ := m["conversation_id"].(float64)
		team, _ := m["team"].(string)
		out[int64(id)] = team
	}
	return out
}

func TestTeams(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	ann := dialWith(t, s, "ann", mintTeams(t, "ann", "Ann", true, "", []string{"billing"}), true, true)
	bob := dialWith(t, s, "bob", mintTeams(t, "bob", "Bob", true, "", nil), true, true)
	carl := dialWith(t, s, "carl", mintTeams(t, "carl", "Carl", true, "", []string{"sales"}), true, false) // the seed dialect

	vera := dialWith(t, s, "vera", mintTeams(t, "vera", "Vera", false, "billing", nil), false, true)
	sam := dialWith(t, s, "sam", mintTeams(t, "sam", "Sam", false, "sales", nil), false, true)
	nina := dialWith(t, s, "nina", mintTeams(t, "nina", "Nina", false, "", nil), false, true)
	veraConv := post(t, vera, 0, "b1", "b1").Int("conversation_id")
	samConv := post(t, sam, 0, "s1", "s1").Int("conversation_id")
	ninaConv := post(t, nina, 0, "n1", "n1").Int("conversation_id")
	post(t, vera, 0, "b2", "b2")

	// The inbox relays in order: once each has the last message, what it
	// lacks was not sent to it.
	for _, c := range []*wsclient.Client{ann, bob, carl} {
		waitMessage(t, c, "n1")
	}
	waitMessage(t, ann, "b2")
	waitMessage(t, bob, "b2")
	if got, want := messageTexts(ann), []string{"b1", "n1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Ann (billing) received %q, want %q", got, want)
	}
	if got, want := messageTexts(bob), []string{"b1", "s1", "n1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Bob (every team) received %q, want %q", got, want)
	}
	// Carl's last message is n1: b2 may still be on its way, but never
	// comes (checked below, after a later one).
	if got, want := messageTexts(carl), []string{"s1", "n1"}; !slices.Equal(got, want) {
		t.Errorf("Carl (sales, seed dialect) received %q, want %q", got, want)
	}
	for _, f := range ann.Frames() {
		if f.Type() == "inbox_update" && obj(f, "conversation")["conversation_id"] == float64(samConv) {
			t.Errorf("Ann received the inbox_update of Sam's conversation: %s", f.Raw)
		}
	}

	// Inbox pages: their teams' conversations and those without one, each
	// with its team; view counts of the same.
	inbox, _ := askInbox(t, ann)
	if got, want := inboxTeams(inbox), map[int64]string{veraConv: "billing", ninaConv: ""}; !mapsEqual(got, want) {
		t.Errorf("Ann's inbox: %v, want %v (%s)", got, want, inbox.Raw)
	}
	if counts := obj(inbox, "counts"); obj(wsclient.Frame{Fields: counts}, "open")["all"] != float64(2) {
		t.Errorf("Ann's view counts: %v, want 2 open", counts)
	}
	inbox, _ = askInbox(t, bob)
	if got, want := inboxTeams(inbox), map[int64]string{veraConv: "billing", samConv: "sales", ninaConv: ""}; !mapsEqual(got, want) {
		t.Errorf("Bob's inbox: %v, want %v (%s)", got, want, inbox.Raw)
	}

	// Sam's host site routes him to billing now: his next message reaches
	// Ann, with the new team, and no longer Carl.
	sam.Close()
	sam = dialWith(t, s, "sam", mintTeams(t, "sam", "Sam", false, "billing", nil), false, true)
	post(t, sam, 0, "s2", "s2")
	post(t, nina, 0, "n2", "n2")
	waitMessage(t, ann, "n2")
	waitMessage(t, carl, "n2")
	if got, want := messageTexts(ann), []string{"b1", "n1", "b2", "s2", "n2"}; !slices.Equal(got, want) {
		t.Errorf("Ann (billing) received %q after Sam moved to billing, want %q", got, want)
	}
	if got, want := messageTexts(carl), []string{"s1", "n1", "n2"}; !slices.Equal(got, want) {
		t.Errorf("Carl (sales) received %q after Sam moved to billing, want %q", got, want)
	}
	var moved bool
	for _, f := range ann.Frames() {
		if c := obj(f, "conversation"); f.Type() == "inbox_update" && c["conversation_id"] == float64(samConv) {
			moved = c["team"] == "billing"
		}
	}
	if !moved {
		t.Errorf("Ann's inbox_update of Sam's conversation does not say billing: %s", dump(ann))
	}
	inbox, _ = askInbox(t, ann)
	if got, want := inboxTeams(inbox), map[int64]string{veraConv: "billing", samConv: "billing", ninaConv: ""}; !mapsEqual(got, want) {
		t.Errorf("Ann's inbox after Sam moved: %v, want %v", got, want)
	}

	// The REST API: each conversation's team, and the teams filter.
	api := newAPIClient(t, s)
	bobToken := mintTeams(t, "bob", "Bob", true, "", nil)
	for _, c := range []struct {
		query string
		want  map[int64]string
	}{
		{"", map[int64]string{veraConv: "billing", samConv: "billing", ninaConv: ""}},
		{"?teams=billing", map[int64]string{veraConv: "billing", samConv: "billing", ninaConv: ""}},
		{"?teams=sales", map[int64]string{ninaConv: ""}},
		{"?teams=sales,billing&status=open", map[int64]string{veraConv: "billing", samConv: "billing", ninaConv: ""}},
		{"?teams=", map[int64]string{ninaConv: ""}},
	} {
		a := api.call("GET", "/conversations"+c.query, bobToken, nil)
		if a.status != http.StatusOK {
			t.Errorf("GET /conversations%s: %d %s", c.query, a.status, a.raw)
			continue
		}
		if got := apiTeams(a); !mapsEqual(got, c.want) {
			t.Errorf("GET /conversations%s: %v, want %v", c.query, got, c.want)
		}
	}
	// A sales conversation assigned to Ann (billing) is hers: its events
	// and messages reach her live, her inbox and counts show it; once
	// unassigned she is told, and then it is sales' again.
	sue := dialWith(t, s, "sue", mintTeams(t, "sue", "Sue", false, "sales", nil), false, true)
	sueConv := post(t, sue, 0, "u1", "u1").Int("conversation_id")
	waitMessage(t, carl, "u1")
	isAssignEvent := func(assignee any) func(wsclient.Frame) bool {
		return func(f wsclient.Frame) bool {
			if f.Type() != "event" || f.Int("conversation_id") != sueConv || obj(f, "event")["kind"] != "assignee" {
				return false
			}
			a, _ := obj(f, "event")["assignee"].(map[string]any)
			return (assignee == nil && a == nil) || (a != nil && a["external_id"] == assignee)
		}
	}
	annAt := len(ann.Frames())
	send(t, bob, map[string]any{"type": "assign", "conversation_id": sueConv, "assignee": "ann"})
	waitFrame(t, ann, annAt, "Sue's conversation assigned to Ann", isAssignEvent("ann"))
	post(t, sue, 0, "u2", "u2")
	waitMessage(t, ann, "u2")
	if inbox, _ := askInbox(t, ann); inboxTeams(inbox)[sueConv] != "sales" {
		t.Errorf("Ann's inbox with Sue's conversation assigned to her: %s, want it (sales)", inbox.Raw)
	}
	send(t, bob, map[string]any{"type": "assign", "conversation_id": sueConv, "assignee": nil})
	waitFrame(t, ann, annAt, "Sue's conversation unassigned", isAssignEvent(nil))
	post(t, sue, 0, "u3", "u3")
	post(t, nina, 0, "n3", "n3")
	waitMessage(t, ann, "n3")
	if got, want := messageTexts(ann)[len(messageTexts(ann))-3:], []string{"n2", "u2", "n3"}; !slices.Equal(got, want) {
		t.Errorf("Ann's last messages: %q, want %q (u1 and u3 are sales' while not hers)", got, want)
	}
	if inbox, _ := askInbox(t, ann); inboxTeams(inbox)[sueConv] != "" {
		t.Errorf("Ann's inbox with Sue's conversation unassigned: %s, want it gone", inbox.Raw)
	}

	for _, q := range []string{"?teams=Billing", "?teams=billing,,sales", "?teams=-x", "?teams=billing&teams=sales", "?teams=" + strings.Repeat("t,", storage.MaxTeams) + "t"} {
		if a := api.call("GET", "/conversations"+q, bobToken, nil); a.status != http.StatusBadRequest || a.code() != "invalid_request" {
			t.Errorf("GET /conversations%s: %d %s, want 400 invalid_request", q, a.status, a.raw)
		}
	}
}

// apiTeams maps each conversation of a REST list to its team ("" when the
// answer has none; a team that is there must not be empty).
func apiTeams(a apiAnswer) map[int64]string {
	out := map[int64]string{}
	list, _ := a.body["conversations"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, _ := m["id"].(float64)
		team, ok := m["team"].(string)
		if ok && team == "" {
			team = "(empty)"
		}
		out[int64(id)] = team
	}
	return out
}

// TestTeamClaimsChecked: a team name that breaks the rules refuses the
// handshake (401), for a visitor's team and for a staff member's teams.
func TestTeamClaimsChecked(t *testing.T) {
	s := startServer(t, "--database-url", newDatabase(t))
	for _, tok := range []string{
		mintTeams(t, "vera", "Vera", false, "Billing", nil),
		mintTeams(t, "vera", "Vera", false, "bill ing", nil),
		mintTeams(t, "ann", "Ann", true, "", []string{"billing", "-x"}),
		mintTeams(t, "ann", "Ann", true, "", []string{"BILLING"}),
	} {
		c, err := wsclient.Dial(ctxT(t, 10*time.Second), s.URL(), wsclient.Options{Token: tok, V1: true})
		if err == nil {
			c.Close()
			t.Errorf("a token with an invalid team was accepted")
			continue
		}
		if c == nil || c.Resp == nil || c.Resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a token with an invalid team: %v, want 401", err)
		}
	}
	// The same users with valid claims connect.
	dialWith(t, s, "vera", mintTeams(t, "vera", "Vera", false, "billing", nil), false, true)
	dialWith(t, s, "ann", mintTeams(t, "ann", "Ann", true, "", []string{"billing", "sales.eu"}), true, true)
}

func mapsEqual(a, b map[int64]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestClusterTeams: the teams filter across nodes. Each staff session's
// teams travel to the inbox grain as protobuf, where an empty list arrives
// as nil and must still mean "no team" (only conversations without one), not
// "every team". Staff of each kind sit on both nodes, so whichever node hosts
// the inbox, one of each is served locally and one through the relay.
func TestClusterTeams(t *testing.T) {
	c := startAutomanagedCluster(t, newDatabase(t), 2)
	staff := func(i int, who string, teams []string) *wsclient.Client {
		sub := fmt.Sprintf("%s-%d", who, i)
		return dialURLWith(t, c.nodes[i].URL(), sub, mintTeams(t, sub, sub, true, "", teams), true, true)
	}
	visitor := func(i int, sub, team string) *wsclient.Client {
		return dialURLWith(t, c.nodes[i].URL(), sub, mintTeams(t, sub, sub, false, team, nil), false, true)
	}
	var none, billing, every [2]*wsclient.Client
	for i := range 2 {
		none[i] = staff(i, "none", []string{})
		billing[i] = staff(i, "billing", []string{"billing"})
		every[i] = staff(i, "every", nil)
	}
	vera, sam := visitor(0, "vera", "billing"), visitor(1, "sam", "sales")
	nina, nora := visitor(0, "nina", ""), visitor(1, "nora", "")
	veraConv := post(t, vera, 0, "b1", "b1").Int("conversation_id")
	samConv := post(t, sam, 0, "s1", "s1").Int("conversation_id")
	ninaConv := post(t, nina, 0, "n1", "n1").Int("conversation_id")
	noraConv := post(t, nora, 0, "o1", "o1").Int("conversation_id")

	// Once staff without the claim on a node have all four, every session
	// of that node has been given what it will be given of them; a later
	// message without a team then closes each session's list.
	for i := range 2 {
		for _, m := range []string{"b1", "s1", "n1", "o1"} {
			waitMessage(t, every[i], m)
		}
	}
	post(t, nina, 0, "n2", "n2")
	want := map[string][]string{
		"none":    {"n1", "o1", "n2"},
		"billing": {"b1", "n1", "o1", "n2"},
		"every":   {"b1", "s1", "n1", "o1", "n2"},
	}
	for i := range 2 {
		for who, cl := range map[string]*wsclient.Client{"none": none[i], "billing": billing[i], "every": every[i]} {
			waitMessage(t, cl, "n2")
			got := messageTexts(cl)
			slices.Sort(got)
			w := slices.Sorted(slices.Values(want[who]))
			if !slices.Equal(got, w) {
				t.Errorf("%s on node %d received %q, want %q", who, i, got, w)
			}
		}
	}

	// Inbox pages, asked on each node.
	for i := range 2 {
		inbox, _ := askInbox(t, none[i])
		if got, want := inboxTeams(inbox), map[int64]string{ninaConv: "", noraConv: ""}; !mapsEqual(got, want) {
			t.Errorf("the inbox of staff with an empty teams list on node %d: %v, want %v (%s)", i, got, want, inbox.Raw)
		}
		inbox, _ = askInbox(t, billing[i])
		if got, want := inboxTeams(inbox), map[int64]string{veraConv: "billing", ninaConv: "", noraConv: ""}; !mapsEqual(got, want) {
			t.Errorf("billing's inbox on node %d: %v, want %v (%s)", i, got, want, inbox.Raw)
		}
	}

	// Sam's sales conversation assigned to none-1 is theirs, not none-0's.
	from := len(none[1].Frames())
	send(t, every[0], map[string]any{"type": "assign", "conversation_id": samConv, "assignee": "none-1"})
	waitFrame(t, none[1], from, "Sam's conversation assigned to none-1", func(f wsclient.Frame) bool {
		a, _ := obj(f, "event")["assignee"].(map[string]any)
		return f.Type() == "event" && f.Int("conversation_id") == samConv && a != nil && a["external_id"] == "none-1"
	})
	post(t, sam, 0, "s2", "s2")
	waitMessage(t, every[0], "s2")
	waitMessage(t, every[1], "s2")
	post(t, nora, 0, "o2", "o2")
	for i, w := range []string{"n2", "s2"} {
		waitMessage(t, none[i], "o2")
		if got := messageTexts(none[i]); len(got) < 2 || got[len(got)-2] != w {
			t.Errorf("none-%d's messages: %q, want %q before o2", i, got, w)
		}
	}
}
