package coordinator

// GroupStats is one group as metrics see it.
type GroupStats struct {
	ID      string
	Type    string // "classic" or "consumer"
	State   string // as ListGroups reports it
	Members int
	// Offsets are the group's committed offsets (transactional commits
	// count once their transaction commits).
	Offsets []CommittedOffset
}

// CommittedOffset is a group's committed offset for one partition.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Stats returns every live group with its state, member count and
// committed offsets, sorted by group id. It copies under the coordinator's
// lock and is meant for scrapes, not for request paths.
func (g *Groups) Stats() []GroupStats {
	g.lock()
	defer g.unlock()
	out := make([]GroupStats, 0, len(g.mu.groups))
	for _, id := range g.sortedGroupIDsLocked() {
		grp := g.mu.groups[id]
		if grp.state == stateDead {
			continue
		}
		gs := GroupStats{ID: id, Type: grp.kind.String()}
		switch grp.kind {
		case kindConsumer:
			gs.State, gs.Members = grp.cg.stateName(), len(grp.cg.members)
		case kindStreams:
			gs.State, gs.Members = grp.sg.stateName(), len(grp.sg.members)
		default:
			gs.State, gs.Members = grp.state.String(), len(grp.members)
		}
		for topic, parts := range g.mu.offsets[id] {
			for p, e := range parts {
				gs.Offsets = append(gs.Offsets, CommittedOffset{Topic: topic, Partition: p, Offset: e.offset})
			}
		}
		out = append(out, gs)
	}
	return out
}
