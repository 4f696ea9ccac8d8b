package bench

import (
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/flowd/flowd/storage"
)

// StoreSize is what a server keeps on disk for the day's buckets.
type StoreSize struct {
	Disk     int64 // allocated blocks, as du counts
	Apparent int64 // file sizes, as du --apparent-size counts
	// MinuteDisk and HourDisk split flowd's parts by tier; zero for the peer.
	MinuteDisk, HourDisk int64
	Parts                [storage.NumTiers]int
	Rows                 [storage.NumTiers]uint64
}

// SettleFlowd opens a stopped flowd's store in this process and lets its
// background merges run until the part count holds still for a second,
// then closes it and measures its parts. The WAL is empty after the close
// flush, so what is left is the parts the store keeps.
func SettleFlowd(dataDir string) (StoreSize, error) {
	dir := filepath.Join(dataDir, "store")
	st, err := storage.Open(dir, storage.Options{
		FlushInterval: 100 * time.Millisecond,
		Retention:     [storage.NumTiers]time.Duration{876000 * time.Hour, 876000 * time.Hour},
		Logf:          func(string, ...any) {},
	})
	if err != nil {
		return StoreSize{}, err
	}
	if err := st.Flush(); err != nil {
		st.Close()
		return StoreSize{}, err
	}
	last, still := st.Stats().Parts, 0
	for still < 10 {
		time.Sleep(100 * time.Millisecond)
		if now := st.Stats().Parts; now == last {
			still++
		} else {
			last, still = now, 0
		}
	}
	// Close waits for a merge under way (an idle compaction can outlast the
	// second of stillness); the parts are counted once it is done, in a
	// store opened again that does no maintenance of its own.
	if err := st.Close(); err != nil {
		return StoreSize{}, err
	}
	if st, err = storage.Open(dir, storage.Options{
		FlushInterval: time.Hour,
		Retention:     [storage.NumTiers]time.Duration{876000 * time.Hour, 876000 * time.Hour},
		Logf:          func(string, ...any) {},
	}); err != nil {
		return StoreSize{}, err
	}
	stats := st.Stats()
	if err := st.Close(); err != nil {
		return StoreSize{}, err
	}
	var s StoreSize
	s.Parts, s.Rows = stats.Parts, stats.PartRows
	if s.Disk, err = DiskBytes(dir); err != nil {
		return s, err
	}
	if s.Apparent, err = DirBytes(dir); err != nil {
		return s, err
	}
	if s.MinuteDisk, err = DiskBytes(filepath.Join(dir, "parts", "minute")); err != nil {
		return s, err
	}
	s.HourDisk, err = DiskBytes(filepath.Join(dir, "parts", "hour"))
	return s, err
}

// SettlePeer asks the peer to flush and merge everything, then waits until
// its data directory has not changed size for three seconds (at most two
// minutes), and measures it.
func SettlePeer(p *Proc) (StoreSize, error) {
	for _, path := range []string{"/internal/force_flush", "/internal/force_merge"} {
		resp, err := http.Get(p.URL + path)
		if err != nil {
			return StoreSize{}, err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return StoreSize{}, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	dir := filepath.Join(p.Dir, "data")
	var last int64 = -1
	still := 0
	deadline := time.Now().Add(2 * time.Minute)
	for still < 6 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		n, err := DiskBytes(dir)
		if err != nil {
			continue // merges rename files under the walk
		}
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	var s StoreSize
	var err error
	if s.Disk, err = DiskBytes(dir); err != nil {
		return s, err
	}
	s.Apparent, err = DirBytes(dir)
	return s, err
}
