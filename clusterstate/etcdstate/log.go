package etcdstate

import "go.uber.org/zap"

// quietZap is the logger given to etcd's client: its own retries and
// reconnects are not the broker's news (the broker logs what fails).
func quietZap() *zap.Logger { return zap.NewNop() }
