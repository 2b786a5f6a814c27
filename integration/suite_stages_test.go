package integration

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Where Skiff's end-to-end latency goes, from its own histograms
// (server/metrics.go), scraped before and after the end-to-end load: a
// produce's queueing behind earlier requests of its connection, its
// handler (checks and the append), its wait for the group-committed
// fdatasync, and the fdatasync rounds themselves.
var suiteStages = []struct{ key, metric, api string }{
	{"produce queue", "skiff_request_queue_seconds", "Produce"},
	{"produce handler", "skiff_request_local_seconds", "Produce"},
	{"produce fsync wait", "skiff_request_fsync_wait_seconds", "Produce"},
	{"fsync round", "skiff_storage_fsync_seconds", ""},
}

// stageBuckets is one scrape: per stage, cumulative counts by upper bound.
type stageBuckets map[string]map[float64]float64

func scrapeStages(b *testing.B, httpAddr string) stageBuckets {
	b.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		b.Fatalf("scraping %s: %v", httpAddr, err)
	}
	defer resp.Body.Close()
	out := stageBuckets{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, st := range suiteStages {
			rest, ok := strings.CutPrefix(line, st.metric+"_bucket{")
			if !ok || st.api != "" && !strings.Contains(rest, `api="`+st.api+`"`) {
				continue
			}
			_, le, ok1 := strings.Cut(rest, `le="`)
			le, after, ok2 := strings.Cut(le, `"}`)
			if !ok1 || !ok2 {
				continue
			}
			bound, err1 := strconv.ParseFloat(le, 64)
			count, err2 := strconv.ParseFloat(strings.TrimSpace(after), 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if out[st.key] == nil {
				out[st.key] = map[float64]float64{}
			}
			out[st.key][bound] = count
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatalf("scraping %s: %v", httpAddr, err)
	}
	return out
}

// stageQuantile is the upper bound, in ms, of the bucket holding the q
// quantile of what was observed between two scrapes; -1 if nothing was.
func stageQuantile(before, after stageBuckets, stage string, q float64) float64 {
	var bounds []float64
	for le := range after[stage] {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return -1
	}
	total := after[stage][math.Inf(1)] - before[stage][math.Inf(1)]
	if total <= 0 {
		return -1
	}
	for _, le := range bounds {
		if after[stage][le]-before[stage][le] >= q*total {
			return le * 1000
		}
	}
	return math.Inf(1)
}

// printStages prints, for each Skiff measured, the median over rounds of
// each stage's p50/p99/p999 bucket bound.
func printStages(names []string, s *suiteSamples) {
	var skiffs []string
	for _, n := range names {
		if strings.HasPrefix(n, "skiff") {
			skiffs = append(skiffs, n)
		}
	}
	if len(skiffs) == 0 {
		return
	}
	fmt.Printf("where Skiff's end-to-end time goes (its histograms over the 10k rec/s load; bucket upper bounds, ms, x2 resolution):\n")
	fmt.Printf("%-28s", "")
	for _, n := range skiffs {
		fmt.Printf(" %22s", n+" p50/p99/p999")
	}
	fmt.Println()
	for _, st := range suiteStages {
		fmt.Printf("%-28s", st.key)
		for _, n := range skiffs {
			var qs []string
			for _, q := range []string{"p50", "p99", "p999"} {
				v, ok := s.median(n, "stage "+st.key+" "+q)
				switch {
				case !ok || v < 0:
					qs = append(qs, "-")
				default:
					qs = append(qs, suiteNum(v))
				}
			}
			fmt.Printf(" %22s", strings.Join(qs, "/"))
		}
		fmt.Println()
	}
}
