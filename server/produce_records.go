package server

import (
	"fmt"
	"strings"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxRecordErrors caps the per-record errors of one produce answer. Kafka
// lists every rejected record; a batch of millions of keyless records
// would make that a response of hundreds of megabytes, so Skiff lists the
// first ones and still counts them all in the message.
const maxRecordErrors = 1000

// nullKeyErrors fills sp's record errors for a batch refused by a
// compacted topic because total of its records have no key, and returns
// the partition's error message, both worded as Kafka's LogValidator
// (validateKey, processRecordErrors) and ProduceResponse.RecordError word
// them. The records were validated already; this second walk happens only
// on the refusal path.
func (s *Server) nullKeyErrors(records []byte, p *partition, total int, sp *kmsg.ProduceResponseTopicPartition) string {
	perRecord := fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d", p.Topic, p.Index)
	var it protocol.RecordIterator
	defer it.Close()
	it.Reset(records, protocol.IterSkipKeyValue, protocol.DefaultMaxDecompressedSize)
	for it.Next() && len(sp.ErrorRecords) < maxRecordErrors {
		if it.KeyLen() >= 0 {
			continue
		}
		e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		e.RelativeOffset = it.Index()
		e.ErrorMessage = kmsg.StringPtr(perRecord)
		sp.ErrorRecords = append(sp.ErrorRecords, e)
	}
	shown := make([]string, 0, 3)
	for _, e := range sp.ErrorRecords[:min(3, len(sp.ErrorRecords))] {
		shown = append(shown, fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", e.RelativeOffset, *e.ErrorMessage))
	}
	return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		total, strings.Join(shown, ", "))
}
