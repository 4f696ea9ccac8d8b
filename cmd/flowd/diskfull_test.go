package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountSmallDisk mounts a tmpfs of the given size for the test, or skips
// when this machine does not let the test mount one (not root).
func mountSmallDisk(t *testing.T, size string) string {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// TestFullDiskAnswers503AndLosesNothing fills the data disk while flowd
// ingests: writes that cannot be made durable answer 503 and keep nothing,
// everything acknowledged before stays, and ingest resumes once space
// returns.
func TestFullDiskAnswers503AndLosesNothing(t *testing.T) {
	disk := mountSmallDisk(t, "16m")
	data := filepath.Join(disk, "data")
	flags := append(registryFlags(t), "-flush-interval", "200ms", "-min-free-disk", "1048576")
	c := startFlowd(t, data, flags...)
	// Batch i is stamped minute i from t0: the up to 3,010 batches below
	// (however many the WAL's room ahead absorbs before the disk is full
	// for it too) must all be in the past, or they would be refused as
	// ahead of the server's clock rather than for the disk.
	t0 := testT0().Add(-52 * time.Hour)
	acked := map[int]int{}
	batch := func(i, k int) string {
		var b strings.Builder
		for j := range k {
			// Spread over many cells so each batch is a WAL record of a few
			// kilobytes: a full page of tmpfs cannot absorb it.
			lat, lng := 30.21+float64(j%20)*0.004, 120.11+float64(j/20)*0.008
			fmt.Fprintf(&b, `{"time":%d,"card":"c%d-%d","dir":"in","lat":%.4f,"lng":%.4f}`+"\n", t0.Add(time.Duration(i)*time.Minute).Unix(), i, j, lat, lng)
		}
		return b.String()
	}
	next := 0
	post := func() int {
		i := next
		next++
		r := do(t, "POST", c.url+"/api/v1/ingest/swipes", "application/x-ndjson", []byte(batch(i, 200)), false)
		if r.status == 200 {
			acked[i] = 200
		} else if r.status != 503 {
			t.Fatalf("batch %d: status %d, want 200 or 503: %s", i, r.status, r.body)
		}
		return r.status
	}
	for range 5 {
		if post() != 200 {
			t.Fatal("ingest failed before the disk was full")
		}
	}
	// Leave almost nothing free.
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// The WAL writes into room it made ahead (zeros written and synced
	// while there was space), so it goes on accepting batches until that
	// room is used; then the disk is full for it too.
	var refused int
	for range 3000 {
		if post() == 503 {
			refused++
			if refused == 30 {
				break
			}
		}
	}
	if refused == 0 {
		t.Fatalf("no batch was refused with 503 on a full disk (free: %d bytes)", freeBytes(t, disk))
	}
	// Alive, but not ready, and saying why.
	if r := c.get(t, "/healthz"); r.status != 200 {
		t.Errorf("/healthz with the disk full: %s; want 200: the process is alive", r)
	}
	if r := c.get(t, "/readyz"); r.status != 503 || !strings.Contains(string(r.body), "no space") || !strings.Contains(string(r.body), "-min-free-disk") {
		t.Errorf("/readyz with the disk full: %s; want 503 telling why ingest fails", r)
	}
	os.Remove(filler)
	time.Sleep(500 * time.Millisecond) // a flush retry has room now
	var ok int
	for range 5 {
		if post() == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("after space returned only %d of 5 batches were accepted", ok)
	}
	if r := c.get(t, "/readyz"); r.status != 200 {
		t.Errorf("/readyz after space returned: %s; want 200", r)
	}
	check := func(c *child, when string) {
		s := c.series(t, fmt.Sprintf("metric=swipes_in&bbox=%s&from=%d&to=%d&step=1m", testBBox, t0.Unix(), t0.Add(time.Duration(next)*time.Minute).Unix()))
		for i := range next {
			want := int64(acked[i])
			if got := s.Points[i][1]; got != want {
				t.Fatalf("%s: batch %d has %d swipes, want %d (acknowledged: %v)", when, i, got, want, acked[i] > 0)
			}
		}
	}
	check(c, "after the disk filled and emptied")
	c.kill()
	c2 := startFlowd(t, data, flags...)
	check(c2, "after a crash and restart")
	t.Logf("%d batches, %d refused with 503 while the disk was full", next, refused)
}
