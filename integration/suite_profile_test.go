package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// suiteProfiles takes CPU and allocation profiles of each Skiff under the
// suite's loads when SKIFF_BENCH_PROFILE_DIR names a directory: a load
// runs again and again while the broker's pprof endpoint samples it for
// a few seconds, so the profile holds that load only. Files are
// <dir>/<broker>-<load>.cpu.pb.gz and .allocs.pb.gz (go tool pprof).
func suiteProfiles(b *testing.B, cfg suiteConfig, brokers []*suiteBroker) {
	dir := os.Getenv("SKIFF_BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const seconds = 6
	for _, br := range brokers {
		if br.http == "" {
			continue
		}
		adm := kadm.NewClient(newClient(b, br.addr))
		for _, load := range cfg.loads() {
			topic := "suite-profile-" + load.name
			createTopic(b, adm, topic, benchPartitions, nil)
			// A fixed amount per pass, small enough to repeat in the window.
			pass := produceLoad{name: load.name, size: load.size, records: int(min(cfg.mb, 64) * 1e6 / int64(load.size))}
			produced := 0
			profileWhile(b, br, filepath.Join(dir, br.name+"-produce-"+load.name), seconds, func() {
				suiteProduce(b, br, topic, pass)
				produced += pass.records + benchPartitions
			})
			profileWhile(b, br, filepath.Join(dir, br.name+"-consume-"+load.name), seconds, func() {
				consumeAll(b, br.addr, topic, produced)
			})
			if _, err := adm.DeleteTopics(testContext(b), topic); err != nil {
				b.Fatalf("%s: delete %s: %v", br.name, topic, err)
			}
		}
		fmt.Fprintf(os.Stderr, "bench: profiles of %s in %s\n", br.name, dir)
	}
}

// profileWhile runs load repeatedly while the broker's CPU profile of
// seconds is taken, then saves that and an allocation profile.
func profileWhile(b *testing.B, br *suiteBroker, prefix string, seconds int, load func()) {
	b.Helper()
	var done atomic.Bool
	got := make(chan error, 1)
	go func() {
		got <- saveURL(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", br.http, seconds), prefix+".cpu.pb.gz")
		done.Store(true)
	}()
	for !done.Load() {
		load()
	}
	if err := <-got; err != nil {
		b.Fatalf("%s: CPU profile: %v", br.name, err)
	}
	if err := saveURL(fmt.Sprintf("http://%s/debug/pprof/allocs", br.http), prefix+".allocs.pb.gz"); err != nil {
		b.Fatalf("%s: allocation profile: %v", br.name, err)
	}
}

func saveURL(url, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
