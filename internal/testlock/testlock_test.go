package testlock

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestAloneExcludesAnotherProcess holds the lock for half a second while
// a second process (this test binary again) asks for it: the second gets
// it only once the first lets go.
func TestAloneExcludesAnotherProcess(t *testing.T) {
	if os.Getenv("TESTLOCK_CHILD") == "1" {
		Alone(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestAloneExcludesAnotherProcess$")
	cmd.Env = append(os.Environ(), "TESTLOCK_CHILD=1")
	var start time.Time
	t.Run("holder", func(t *testing.T) {
		Alone(t)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		time.Sleep(500 * time.Millisecond)
	}) // the lock is let go here
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the second process: %v", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("the second process took the lock %v after it started, while the first held it for 500 ms", took)
	}
}
