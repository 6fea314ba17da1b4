package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/grainchat/grainchat/storage"
)

// teamTests are the conformance tests of teams (storage.UserInput.Team,
// InboxQuery.Teams; Run runs them).
func teamTests() []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Teams/ConnectKeepsTheTokensTeam", testTeamsConnect},
		{"Teams/InvalidNamesRefused", testTeamsInvalid},
		{"Teams/ViewsKeepTheirTeamsAndNoTeam", testTeamsViews},
	}
}

func testTeamsConnect(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, c, err := s.Connect(ctx, storage.UserInput{ExternalID: "v1", Name: "Vera", Team: "billing"})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if u.Team != "billing" {
		t.Fatalf("Connect: team %q, want billing", u.Team)
	}
	// Connecting again with the same team: the same user; another team
	// replaces it; none clears it (like email and context).
	for _, team := range []string{"billing", "sales.eu", ""} {
		u2, c2, err := s.Connect(ctx, storage.UserInput{ExternalID: "v1", Name: "Vera", Team: team})
		if err != nil {
			t.Fatalf("Connect(team %q): %v", team, err)
		}
		if u2.ID != u.ID || c2.ID != c.ID || u2.Team != team {
			t.Fatalf("Connect(team %q) = user %d team %q, conversation %d; want user %d team %q, conversation %d",
				team, u2.ID, u2.Team, c2.ID, u.ID, team, c.ID)
		}
		got, err := s.User(ctx, u.ID)
		if err != nil || got.Team != team {
			t.Fatalf("User after Connect(team %q) = %+v, %v", team, got, err)
		}
		states, err := s.ConversationStates(ctx, []int64{c.ID})
		if err != nil || len(states) != 1 || states[0].Visitor.Team != team {
			t.Fatalf("ConversationStates after Connect(team %q) = %+v, %v", team, states, err)
		}
	}
}

func testTeamsInvalid(t *testing.T, s storage.Store) {
	for _, team := range []string{"Billing", "-billing", "bill ing", "bill/ing", "é", strings.Repeat("a", storage.MaxTeamBytes+1)} {
		_, _, err := s.Connect(t.Context(), storage.UserInput{ExternalID: "v-bad", Team: team})
		wantCode(t, err, storage.EINVALID)
		_, err = s.UpsertUser(t.Context(), storage.UserInput{ExternalID: "v-bad", Team: team})
		wantCode(t, err, storage.EINVALID)
		_, err = s.InboxView(t.Context(), storage.InboxQuery{Teams: []string{"billing", team}})
		wantCode(t, err, storage.EINVALID)
		_, err = s.ViewCounts(t.Context(), 1, []string{team})
		wantCode(t, err, storage.EINVALID)
	}
	if _, _, err := s.Connect(t.Context(), storage.UserInput{ExternalID: "v-ok", Team: strings.Repeat("a", storage.MaxTeamBytes)}); err != nil {
		t.Fatalf("Connect with a team of %d bytes: %v", storage.MaxTeamBytes, err)
	}
	many := make([]string, storage.MaxTeams+1)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	_, err := s.InboxView(t.Context(), storage.InboxQuery{Teams: many})
	wantCode(t, err, storage.EINVALID)
}

func testTeamsViews(t *testing.T, s storage.Store) {
	ctx := t.Context()
	staff := mustUser(t, s, storage.UserInput{ExternalID: "staff", Name: "Ann", IsAdmin: true})
	teamOf := map[int64]string{}
	var convs []storage.Conversation
	for i, team := range []string{"billing", "sales", "", "billing", "support"} {
		u, c, err := s.Connect(ctx, storage.UserInput{ExternalID: "v" + string(rune('a'+i)), Team: team})
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		mustAppend(t, s, []storage.NewMessage{{ConversationID: c.ID, SenderID: u.ID, SenderName: u.Name, Body: "hi"}})
		teamOf[c.ID] = team
		convs = append(convs, c)
	}
	// Newest first: the inbox order.
	want := func(teams []string) []int64 {
		var ids []int64
		for i := len(convs) - 1; i >= 0; i-- {
			if team := teamOf[convs[i].ID]; teams == nil || team == "" || slices.Contains(teams, team) {
				ids = append(ids, convs[i].ID)
			}
		}
		return ids
	}
	for _, teams := range [][]string{nil, {}, {"billing"}, {"billing", "sales"}, {"nobody"}} {
		entries, err := s.InboxView(ctx, storage.InboxQuery{ViewerID: staff.ID, Teams: teams})
		if err != nil {
			t.Fatalf("InboxView(teams %q): %v", teams, err)
		}
		if got := inboxIDs(entries); !slices.Equal(got, want(teams)) {
			t.Errorf("InboxView(teams %q) = %v, want %v", teams, got, want(teams))
		}
		for _, e := range entries {
			if e.Team != teamOf[e.ConversationID] {
				t.Errorf("InboxView(teams %q): conversation %d has team %q, want %q", teams, e.ConversationID, e.Team, teamOf[e.ConversationID])
			}
		}
		counts, err := s.ViewCounts(ctx, staff.ID, teams)
		if err != nil {
			t.Fatalf("ViewCounts(teams %q): %v", teams, err)
		}
		if counts[0].Status != storage.StatusOpen || counts[0].All != int64(len(want(teams))) || counts[0].Unassigned != counts[0].All {
			t.Errorf("ViewCounts(teams %q) = %+v, want %d open, all unassigned", teams, counts, len(want(teams)))
		}
	}
	// A conversation assigned to the viewer is theirs whatever its team.
	support := convs[4]
	if _, err := s.ChangeConversation(ctx, support.ID, storage.Change{Assignee: &staff.ID, ActorID: staff.ID}); err != nil {
		t.Fatalf("ChangeConversation: %v", err)
	}
	for _, teams := range [][]string{{}, {"billing"}} {
		entries, err := s.InboxView(ctx, storage.InboxQuery{ViewerID: staff.ID, Teams: teams})
		if err != nil {
			t.Fatalf("InboxView(teams %q): %v", teams, err)
		}
		if got, w := inboxIDs(entries), append([]int64{support.ID}, want(teams)...); !slices.Equal(got, w) {
			t.Errorf("InboxView(teams %q) with support's assigned to the viewer = %v, want %v", teams, got, w)
		}
		other, err := s.InboxView(ctx, storage.InboxQuery{ViewerID: staff.ID + 1000, Teams: teams})
		if err != nil || !slices.Equal(inboxIDs(other), want(teams)) {
			t.Errorf("InboxView(teams %q) of another viewer = %v, %v; want %v", teams, inboxIDs(other), err, want(teams))
		}
		counts, err := s.ViewCounts(ctx, staff.ID, teams)
		if err != nil || counts[0].All != int64(len(want(teams))+1) || counts[0].Mine != 1 {
			t.Errorf("ViewCounts(teams %q) with support's assigned = %+v, %v; want %d open, 1 mine", teams, counts, err, len(want(teams))+1)
		}
	}

	// Inbox and InboxPage (no filter) and ConversationEntry carry the team.
	all, err := s.Inbox(ctx, 10)
	if err != nil {
		t.Fatalf("Inbox: %v", err)
	}
	for _, e := range all {
		if e.Team != teamOf[e.ConversationID] {
			t.Errorf("Inbox: conversation %d has team %q, want %q", e.ConversationID, e.Team, teamOf[e.ConversationID])
		}
	}
	e, err := s.ConversationEntry(ctx, staff.ID, convs[1].ID)
	if err != nil || e.Team != "sales" {
		t.Errorf("ConversationEntry = team %q, %v; want sales", e.Team, err)
	}
}
