package skifftest

import "github.com/skiffmq/skiff/server"

// Fault is a fault-injection rule; see server.Fault.
type Fault = server.Fault

// RequestSeen is a request the broker received; see server.RequestSeen.
type RequestSeen = server.RequestSeen

// Fault actions; see server.FaultAction.
const (
	FaultObserve = server.FaultObserve
	FaultError   = server.FaultError
	FaultDelay   = server.FaultDelay
	FaultClose   = server.FaultClose
	FaultDrop    = server.FaultDrop
	AnyAPI       = server.AnyAPI
)

// InjectFault adds a fault rule and returns its id for ClearFault. Rules
// are matched in the order added; the first match applies. Reset clears
// them.
func (b *Broker) InjectFault(f Fault) int64 { return b.Server().InjectFault(f) }

// ClearFault removes a rule; it reports whether the rule was still there.
func (b *Broker) ClearFault(id int64) bool { return b.Server().ClearFault(id) }

// ClearFaults removes every rule and forgets the requests seen.
func (b *Broker) ClearFaults() { b.Server().ClearFaults() }

// Requests returns the requests received since the first InjectFault (or
// since start, with TestControl), oldest first.
func (b *Broker) Requests() []RequestSeen { return b.Server().Requests() }
