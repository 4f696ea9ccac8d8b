package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// FleetProcess is a LiveFleet served by a child process (ServeLiveFleet),
// so that the clients' work and memory are not the measured server's or
// the load generator's.
type FleetProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// StartFleetProcess starts cmd and sends it cfg; Ready waits until its
// clients have their snapshots.
func StartFleetProcess(cmd *exec.Cmd, cfg LiveFleetConfig) (*FleetProcess, error) {
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a live fleet: %w", err)
	}
	f := &FleetProcess{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	f.out.Buffer(nil, 256<<20)
	line, err := json.Marshal(cfg)
	if err == nil {
		_, err = stdin.Write(append(line, '\n'))
	}
	if err != nil {
		f.Kill()
		return nil, err
	}
	return f, nil
}

// Ready waits for the fleet's clients to be connected and subscribed.
func (f *FleetProcess) Ready() error {
	var ready struct {
		Ready int
		Error string
	}
	if err := f.next(&ready); err != nil {
		return err
	}
	if ready.Error != "" {
		return fmt.Errorf("live fleet: %s", ready.Error)
	}
	return nil
}

// Report stops the fleet and returns what its clients got.
func (f *FleetProcess) Report() (LiveFleetReport, error) {
	f.stdin.Close()
	var r LiveFleetReport
	err := f.next(&r)
	f.cmd.Wait()
	return r, err
}

// Kill ends the fleet's process at once.
func (f *FleetProcess) Kill() {
	f.cmd.Process.Kill()
	f.cmd.Wait()
}

// next decodes the fleet's next JSON line into v, skipping other lines
// (a test binary serving a fleet prints its own).
func (f *FleetProcess) next(v any) error {
	for f.out.Scan() {
		if line := f.out.Bytes(); bytes.HasPrefix(line, []byte("{")) {
			if err := json.Unmarshal(line, v); err != nil {
				return fmt.Errorf("live fleet said %.200s: %w", line, err)
			}
			return nil
		}
	}
	if err := f.out.Err(); err != nil {
		return fmt.Errorf("live fleet: %w", err)
	}
	return fmt.Errorf("live fleet ended")
}
