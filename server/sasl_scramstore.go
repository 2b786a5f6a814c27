package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skiffmq/skiff/storage"
)

// scramStore holds every user's SCRAM credentials, persisted beside the
// cluster metadata in scram-credentials.json (Kafka keeps them in the
// cluster metadata log). Only salts, iteration counts and the derived
// StoredKey/ServerKey are kept; passwords never reach the disk.
//
// Lock order: saveMu before mu. mu guards the map and is never held for
// disk I/O; saveMu serialises writers so that the file always holds the
// newest snapshot.
type scramStore struct {
	fs     storage.FS // the store's filesystem; set by open
	path   string     // empty until open
	saveMu sync.Mutex
	mu     struct {
		sync.RWMutex
		users map[string]map[int8]scramCredential // user -> mechanism type -> credential
	}
}

const scramFileName = "scram-credentials.json"

// ScramUser bootstraps a SCRAM user: name:password[:mechanism]. Without a
// mechanism both SCRAM-SHA-256 and SCRAM-SHA-512 credentials are made.
func parseScramUser(v string) (user, password string, mechs []*scramMechanism, err error) {
	user, rest, ok := strings.Cut(v, ":")
	if !ok || user == "" {
		return "", "", nil, fmt.Errorf("server: scram user %q is not name:password[:mechanism]", v)
	}
	password = rest
	if i := strings.LastIndex(rest, ":SCRAM-"); i >= 0 {
		m := scramMechanismByName(rest[i+1:])
		if m == nil {
			return "", "", nil, fmt.Errorf("server: scram user %s: unknown mechanism %q", user, rest[i+1:])
		}
		password, mechs = rest[:i], []*scramMechanism{m}
	} else {
		mechs = []*scramMechanism{scramSHA256, scramSHA512}
	}
	if password == "" {
		return "", "", nil, fmt.Errorf("server: scram user %s has an empty password", user)
	}
	return user, password, mechs, nil
}

// scramStore returns the config's store, made on first use; it is shared
// by every listener and by the Describe/AlterUserScramCredentials APIs.
func (c *Config) scramStore() *scramStore {
	if c.scram == nil {
		c.scram = &scramStore{}
		c.scram.mu.users = map[string]map[int8]scramCredential{}
	}
	return c.scram
}

// open loads the stored credentials and adds the bootstrap users (which
// replace stored credentials of the same user and mechanism).
func (st *scramStore) open(fsys storage.FS, dataDir string, bootstrap []string) error {
	st.fs, st.path = fsys, filepath.Join(dataDir, scramFileName)
	data, err := fsys.ReadFile(st.path)
	users := map[string]map[int8]scramCredential{}
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("server: reading scram credentials: %w", err)
	default:
		if err := json.Unmarshal(data, &users); err != nil {
			return fmt.Errorf("server: scram credentials %s are corrupt: %w", st.path, err)
		}
	}
	for _, b := range bootstrap {
		user, pw, mechs, err := parseScramUser(b)
		if err != nil {
			return err
		}
		for _, m := range mechs {
			cred, err := m.newCredential(pw, scramDefaultIterations)
			if err != nil {
				return err
			}
			if users[user] == nil {
				users[user] = map[int8]scramCredential{}
			}
			users[user][m.typ] = cred
		}
	}
	st.mu.Lock()
	st.mu.users = users
	st.mu.Unlock()
	if len(bootstrap) > 0 {
		return st.save()
	}
	return nil
}

func (st *scramStore) lookup(user string, m *scramMechanism) (scramCredential, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, ok := st.mu.users[user][m.typ]
	return c, ok
}

// describe returns a user's mechanisms and iteration counts.
func (st *scramStore) describe(user string) (map[int8]int32, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	creds, ok := st.mu.users[user]
	if !ok {
		return nil, false
	}
	out := make(map[int8]int32, len(creds))
	for t, c := range creds {
		out[t] = c.Iterations
	}
	return out, true
}

func (st *scramStore) userNames() []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]string, 0, len(st.mu.users))
	for u := range st.mu.users {
		out = append(out, u)
	}
	return out
}

// scramChange is one upsertion (cred set) or deletion (cred nil).
type scramChange struct {
	user string
	typ  int8
	cred *scramCredential
}

// apply makes the changes and persists them before returning, so an
// acknowledged change survives a crash.
func (st *scramStore) apply(changes []scramChange) error {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	st.mu.Lock()
	for _, ch := range changes {
		if ch.cred == nil {
			delete(st.mu.users[ch.user], ch.typ)
			if len(st.mu.users[ch.user]) == 0 {
				delete(st.mu.users, ch.user)
			}
			continue
		}
		if st.mu.users[ch.user] == nil {
			st.mu.users[ch.user] = map[int8]scramCredential{}
		}
		st.mu.users[ch.user][ch.typ] = *ch.cred
	}
	st.mu.Unlock()
	return st.saveHeld()
}

func (st *scramStore) save() error {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	return st.saveHeld()
}

// saveHeld writes a snapshot; the caller holds saveMu, not mu.
func (st *scramStore) saveHeld() error {
	if st.path == "" {
		return nil
	}
	st.mu.RLock()
	data, err := json.MarshalIndent(st.mu.users, "", "  ")
	st.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := storage.WriteFileAtomicFS(st.fs, st.path, data); err != nil {
		return fmt.Errorf("server: saving scram credentials: %w", err)
	}
	return nil
}
