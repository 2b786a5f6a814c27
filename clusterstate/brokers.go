package clusterstate

// Broker is a live broker of a cluster, as it registered itself: its
// node.id, broker.rack and advertised listeners.
type Broker struct {
	NodeID    int32      `json:"node_id"`
	Rack      string     `json:"rack,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one advertised listener of a broker.
type Endpoint struct {
	Listener string `json:"listener"`
	Host     string `json:"host"`
	Port     int32  `json:"port"`
}

// Endpoint returns the broker's endpoint on the named listener.
func (b Broker) Endpoint(listener string) (Endpoint, bool) {
	for _, e := range b.Endpoints {
		if e.Listener == listener {
			return e, true
		}
	}
	return Endpoint{}, false
}
