package coordinator

import (
	"sort"
)

// assignStreamsTasks is a sticky task assignor in the spirit of Kafka's
// StickyTaskAssignor (group.streams.assignor "sticky"): active tasks stay
// with their previous owner while it is within a balanced share, the rest
// go to the least loaded member, members of the least loaded process
// first; each stateful task (its subtopology has state changelogs) then
// gets up to numStandbys standby replicas on other processes, previous
// standby owners first: a stateless task has no state to keep warm, as in
// Kafka. No warm-up tasks are assigned.
func assignStreamsTasks(sg *streamsGroup, counts map[string]int32, stateful map[string]bool, numStandbys int) map[string]streamsAssignment {
	out := make(map[string]streamsAssignment, len(sg.members))
	ids := sortedMemberIDs(sg.members)
	if len(ids) == 0 {
		return out
	}
	for _, id := range ids {
		out[id] = newStreamsAssignment()
	}
	type task struct {
		sub string
		p   int32
	}
	var all []task
	for _, sub := range sortedKeys(counts) {
		for p := int32(0); p < counts[sub]; p++ {
			all = append(all, task{sub, p})
		}
	}
	// prevActive/prevStandby: who ran a task (current assignment first,
	// then the previous target).
	prevActive := map[task]string{}
	prevStandby := map[task][]string{}
	for _, id := range ids {
		m := sg.members[id]
		for _, a := range []tasks{sg.target[id].active, m.assigned.active, m.pending.active} {
			for sub, ps := range a {
				for _, p := range ps {
					prevActive[task{sub, p}] = id
				}
			}
		}
		for _, a := range []tasks{sg.target[id].standby, m.assigned.standby} {
			for sub, ps := range a {
				for _, p := range ps {
					prevStandby[task{sub, p}] = append(prevStandby[task{sub, p}], id)
				}
			}
		}
	}
	process := func(id string) string { return sg.members[id].processID }
	load := map[string]int{}        // tasks per member
	processLoad := map[string]int{} // tasks per process
	give := func(id string, t task, active bool) {
		a := out[id]
		if active {
			a.active.add(t.sub, t.p)
		} else {
			a.standby.add(t.sub, t.p)
		}
		load[id]++
		processLoad[process(id)]++
	}
	leastLoaded := func(ok func(id string) bool) string {
		best := ""
		for _, id := range ids {
			if !ok(id) {
				continue
			}
			if best == "" || processLoad[process(id)] < processLoad[process(best)] ||
				(processLoad[process(id)] == processLoad[process(best)] && load[id] < load[best]) {
				best = id
			}
		}
		return best
	}

	// Balanced is floor(tasks/members) each, and one more for as many
	// members as the division leaves over: a previous owner keeps a task
	// while it is within that.
	floor, extras := len(all)/len(ids), len(all)%len(ids)
	var rest []task
	for _, t := range all {
		if id, ok := prevActive[t]; ok && sg.members[id] != nil {
			switch {
			case load[id] < floor:
				give(id, t, true)
				continue
			case load[id] == floor && extras > 0:
				extras--
				give(id, t, true)
				continue
			}
		}
		rest = append(rest, t)
	}
	for _, t := range rest {
		give(leastLoaded(func(string) bool { return true }), t, true)
	}

	if numStandbys <= 0 {
		return out
	}
	activeOwner := map[task]string{}
	for id, a := range out {
		for sub, ps := range a.active {
			for _, p := range ps {
				activeOwner[task{sub, p}] = id
			}
		}
	}
	for _, t := range all {
		if !stateful[t.sub] {
			continue
		}
		used := map[string]bool{process(activeOwner[t]): true}
		prev := prevStandby[t]
		sort.Strings(prev)
		for r := 0; r < numStandbys; r++ {
			pick := ""
			for _, id := range prev {
				if sg.members[id] != nil && !used[process(id)] {
					pick = id
					break
				}
			}
			if pick == "" {
				pick = leastLoaded(func(id string) bool { return !used[process(id)] })
			}
			if pick == "" {
				break // fewer processes than replicas
			}
			used[process(pick)] = true
			give(pick, t, false)
		}
	}
	return out
}
