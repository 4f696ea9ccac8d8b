package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/flowd/flowd/api"
)

// token serves `flowd token`: it makes a new random token, prints it once
// (flowd keeps only its hash), and appends its line to the token file, or
// with -hash prints the line of a token the operator already has.
func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "read", "role of the token: ingest, read or admin")
	name := fs.String("name", "", "name of the token in logs and the audit log (no spaces)")
	file := fs.String("file", "", "token file to append the new line to (created with mode 0600); default print it")
	hash := fs.String("hash", "", "an existing token to hash instead of making a new one")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if _, err := api.ParseRole(*role); err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	if *name == "" || strings.ContainsAny(*name, " \t\n") {
		return fmt.Errorf("-name %q: give a name without spaces, such as the caller's team or tool", *name)
	}
	secret := *hash
	if secret == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = "fl_" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	h := api.HashToken(secret)
	line := fmt.Sprintf("%s %s %s\n", hex.EncodeToString(h[:]), strings.ToLower(*role), *name)
	if *file == "" {
		fmt.Print(line)
	} else {
		f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(line); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "flowd: added %s (%s) to %s; send SIGHUP to a running flowd to load it\n", *name, *role, *file)
	}
	if *hash == "" {
		fmt.Fprintf(os.Stderr, "token (shown once, flowd keeps only its hash):\n")
		fmt.Println(secret)
	}
	return nil
}
