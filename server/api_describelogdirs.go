package server

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0 was removed in Kafka 4.0 (KIP-896).
func init() { register(kmsg.DescribeLogDirs, 1, 4, (*Server).handleDescribeLogDirs) }

// handleDescribeLogDirs reports the one data directory with the size of
// every requested partition's log (all partitions when topics is null) and,
// from v4, the file system's total and usable bytes.
func (s *Server) handleDescribeLogDirs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)

	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.cfg.DataDir
	if abs, err := filepath.Abs(s.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(s.cfg.DataDir)

	type want struct {
		topic string
		parts []int32 // nil: every partition
	}
	var wants []want
	if req.Topics == nil {
		for _, name := range s.meta.topicNames() {
			wants = append(wants, want{topic: name})
		}
	} else {
		// Kafka collects the requested partitions in a set, so a topic or
		// partition named many times is described once.
		at := make(map[string]int, len(req.Topics))
		seen := make(map[int64]bool)
		for _, rt := range req.Topics {
			i, ok := at[rt.Topic]
			if !ok {
				i = len(wants)
				at[rt.Topic] = i
				wants = append(wants, want{topic: rt.Topic, parts: []int32{}})
			}
			for _, p := range rt.Partitions {
				if k := int64(i)<<32 | int64(uint32(p)); !seen[k] {
					seen[k] = true
					wants[i].parts = append(wants[i].parts, p)
				}
			}
		}
	}
	for _, w := range wants {
		parts := s.meta.partitions(w.topic)
		if parts == nil {
			continue // Kafka leaves out what it does not host
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = w.topic
		add := func(p *partition) {
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = p.Index
			dp.Size = p.Log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if w.parts == nil {
			for _, p := range parts {
				add(p)
			}
		} else {
			for _, i := range w.parts {
				if i >= 0 && int(i) < len(parts) {
					add(parts[i])
				}
			}
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
