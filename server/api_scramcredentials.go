package server

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554),
// with the results and messages of Kafka's ScramImage and
// ScramControlManager. An upsertion carries the salted password, which the
// broker turns into StoredKey and ServerKey; the password itself is never
// sent or kept.

func init() {
	register(kmsg.DescribeUserSCRAMCredentials, 0, 0, (*Server).handleDescribeUserScram)
	register(kmsg.AlterUserSCRAMCredentials, 0, 0, (*Server).handleAlterUserScram)
}

func (s *Server) handleDescribeUserScram(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	st := s.cfg.scram
	dup := map[string]bool{}
	var names []string
	if len(req.Users) == 0 {
		names = st.userNames()
	} else {
		for _, u := range req.Users {
			if _, seen := dup[u.Name]; seen {
				dup[u.Name] = true
				continue
			}
			dup[u.Name] = false
			names = append(names, u.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = name
		if dup[name] {
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = strPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + name)
		} else if creds, ok := st.describe(name); ok {
			for _, typ := range []int8{1, 2} {
				if it, ok := creds[typ]; ok {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = typ, it
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
		} else {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = strPtr("Attempt to describe a user credential that does not exist: " + name)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func (s *Server) handleAlterUserScram(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	st := s.cfg.scram
	type apiErr struct {
		code int16
		msg  string
	}
	errs := map[string]apiErr{}
	changes := map[string]scramChange{}
	const twice = "A user credential cannot be altered twice in the same request"
	check := func(name string, mech int8) (*scramMechanism, *apiErr) {
		if name == "" {
			return nil, &apiErr{kerr.UnacceptableCredential.Code, "Username must not be empty"}
		}
		m := scramMechanismByType(mech)
		if m == nil {
			return nil, &apiErr{kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism"}
		}
		return m, nil
	}
	for _, d := range req.Deletions {
		if _, bad := errs[d.Name]; bad {
			continue
		}
		if _, seen := changes[d.Name]; seen {
			delete(changes, d.Name)
			errs[d.Name] = apiErr{kerr.DuplicateResource.Code, twice}
			continue
		}
		m, e := check(d.Name, d.Mechanism)
		if e == nil {
			if _, ok := st.lookup(d.Name, m); !ok {
				e = &apiErr{kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist"}
			}
		}
		if e != nil {
			errs[d.Name] = *e
			continue
		}
		changes[d.Name] = scramChange{user: d.Name, typ: m.typ}
	}
	for _, u := range req.Upsertions {
		if _, bad := errs[u.Name]; bad {
			continue
		}
		if _, seen := changes[u.Name]; seen {
			delete(changes, u.Name)
			errs[u.Name] = apiErr{kerr.DuplicateResource.Code, twice}
			continue
		}
		m, e := check(u.Name, u.Mechanism)
		if e == nil && u.Iterations < scramMinIterations {
			e = &apiErr{kerr.UnacceptableCredential.Code, "Too few iterations"}
		} else if e == nil && u.Iterations > scramMaxIterations {
			e = &apiErr{kerr.UnacceptableCredential.Code, "Too many iterations"}
		}
		if e != nil {
			errs[u.Name] = *e
			continue
		}
		cred := m.credentialFromSalted(u.SaltedPassword, u.Salt, u.Iterations)
		changes[u.Name] = scramChange{user: u.Name, typ: m.typ, cred: &cred}
	}
	var list []scramChange
	for _, ch := range changes {
		list = append(list, ch)
	}
	if len(list) > 0 {
		if err := st.apply(list); err != nil {
			s.log.Error().Err(err).Msg("scram: persisting credentials failed")
			for _, ch := range list {
				errs[ch.user] = apiErr{kerr.UnknownServerError.Code, "The credentials could not be saved"}
			}
			list = nil
		}
	}
	for _, ch := range list {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = ch.user
		resp.Results = append(resp.Results, res)
	}
	for name, e := range errs {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = name, e.code, strPtr(e.msg)
		resp.Results = append(resp.Results, res)
	}
	sort.Slice(resp.Results, func(i, j int) bool { return resp.Results[i].User < resp.Results[j].User })
	return resp, nil
}
