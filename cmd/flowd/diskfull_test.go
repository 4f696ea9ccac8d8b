package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// mountSmallExt4 mounts a fresh ext4 file system of the given size (an
// image file on a loop device) for the test, or skips when this machine
// cannot (not root, no loop devices, no mkfs.ext4). ext4 is what most
// servers' data disks are: delayed allocation, a journal, and the
// O_DIRECT writes the WAL makes there, none of which tmpfs has.
func mountSmallExt4(t *testing.T, size string) string {
	img := filepath.Join(t.TempDir(), "disk.img")
	dir := t.TempDir()
	steps := [][]string{{"truncate", "-s", size, img}, {"mkfs.ext4", "-q", img}, {"mount", "-o", "loop", img, dir}}
	for _, cmd := range steps {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a small ext4 to fill (%s): %v: %s", cmd[0], err, out)
		}
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
	t.Run("tmpfs", func(t *testing.T) { fullDiskLosesNothing(t, mountSmallDisk(t, "16m")) })
	t.Run("ext4", func(t *testing.T) { fullDiskLosesNothing(t, mountSmallExt4(t, "24m")) })
}

func fullDiskLosesNothing(t *testing.T, disk string) {
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

// fillDisk writes a file into dir until not one more byte fits, and
// returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for size := 64 << 10; size > 0; size /= 4 {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
	return path
}

// TestFullDiskNewMetricAnswers503: a request that names a new metric (a
// new detector class) while the disk is full cannot make the metric's
// name durable; it is answered 503 with Retry-After, as a WAL write that
// fails is — not 400 (nothing is wrong with the request) nor 500 — and
// the same request is kept once there is space again. /readyz gives the
// failure as the store's last error meanwhile.
func TestFullDiskNewMetricAnswers503(t *testing.T) {
	disk := mountSmallDisk(t, "16m")
	c := startFlowd(t, filepath.Join(disk, "data"), registryFlags(t)...)
	line := func(class string) []byte {
		return fmt.Appendf(nil, `{"time":%d,"sensor":"D1","class":%q,"count":7,"interval":60,"speed":40}`+"\n", testT0().Unix(), class)
	}
	if r := do(t, "POST", c.url+"/api/v1/ingest/counts", "application/x-ndjson", line("car"), false); r.status != 200 {
		t.Fatalf("before the disk filled: %s", r)
	}
	filler := fillDisk(t, disk)
	req := func() *http.Response {
		resp, err := http.Post(c.url+"/api/v1/ingest/counts", "application/x-ndjson", bytes.NewReader(line("tram")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := req()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a new class on a full disk: status %d, Retry-After %q; want 503 and a Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if r := c.get(t, "/readyz"); r.status != 503 || !strings.Contains(string(r.body), "no space") {
		t.Errorf("/readyz after the refusal: %s; want 503 giving the store's last error, no space", r)
	}
	os.Remove(filler)
	if resp := req(); resp.StatusCode != 200 {
		t.Fatalf("the same request once there is space: status %d, want 200", resp.StatusCode)
	}
	var names struct{ Metrics []string }
	r := c.get(t, "/api/v1/metrics")
	r.json(t, &names)
	if !slices.Contains(names.Metrics, "count_tram") {
		t.Fatalf("count_tram not among the metrics after it was kept: %s", r.body)
	}
}
