package clusterstate

import "github.com/skiffmq/skiff/acl"

// ACLs returns the published ACLs: an immutable set, read without a lock
// by every authorization decision.
func (s *State) ACLs() *acl.Set { return s.acls.Load() }

// CreateACLs adds bindings (already validated) and saves them; bindings
// that exist already are kept once. On failure nothing changes.
func (s *State) CreateACLs(bindings []acl.Binding) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	next := s.savedACLs.With(bindings)
	if next.Len() == s.savedACLs.Len() {
		return nil // all exist already: nothing to save
	}
	return s.replaceACLsLocked(next)
}

// DeleteACLs removes the bindings any filter selects, saves the rest and
// returns, per filter, what it selected. On failure nothing changes and
// nothing is returned.
func (s *State) DeleteACLs(filters []acl.Filter) ([][]acl.Binding, error) {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	next, deleted := s.savedACLs.Without(filters)
	if next.Len() == s.savedACLs.Len() {
		return deleted, nil // nothing selected: nothing to save
	}
	if err := s.replaceACLsLocked(next); err != nil {
		return nil, err
	}
	return deleted, nil
}

// replaceACLsLocked saves next and publishes it once saved. Callers hold
// changeMu.
func (s *State) replaceACLsLocked(next *acl.Set) error {
	prev := s.savedACLs
	s.savedACLs = next
	if err := s.saveLocked(s.topics.Load(), s.quotas.Load()); err != nil {
		s.savedACLs = prev
		return err
	}
	s.acls.Store(next)
	s.log.Info().Int("acls", next.Len()).Msg("acls changed")
	return nil
}
