// Command flowd is a real-time monitoring server for traffic and tourism
// flows: it ingests transit-card swipes, detector counts and scenic-site
// footfall, buckets them by minute into H3 cells in its own columnar store,
// and answers queries and live map subscriptions.
//
// Usage:
//
//	flowd [serve] [flags]   start the server (the default)
//	flowd import [flags] FILE...  load history files into a running flowd
//	flowd export [flags]    write open data of past days from a running flowd
//	flowd feed [flags]      send the synthetic city to a running flowd
//	flowd token [flags]     make an access token and its token-file line
//	flowd help
package main

import (
	"errors"
	"fmt"
	"os"
)

// usage lists the subcommands; `flowd -h`, `flowd help` and an unknown
// command print it.
const usage = `flowd is a real-time monitoring server for traffic and tourism flows.

Usage:
  flowd [serve] [flags]           start the server (the default command)
  flowd import [flags] FILE...    load history files into a running flowd
  flowd export -dir DIR [flags]   write privacy-safe open data (CSV, GeoJSON) of past days
  flowd feed [flags]              send the synthetic city to a running flowd
  flowd token [flags]             make an access token and its token-file line
  flowd help                      print this text

"flowd COMMAND -h" lists the flags of a command.
`

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelp(args[0]) {
		cmd = "help"
	}
	stopProfile, err := startProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowd:", err)
		os.Exit(1)
	}
	switch cmd {
	case "serve":
		err = serve(args)
	case "feed":
		err = feed(args)
	case "token":
		err = token(args)
	case "import":
		err = importCmd(args)
	case "export":
		err = exportCmd(args)
	case "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprint(os.Stderr, usage)
		err = fmt.Errorf("unknown command %q", cmd)
	}
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowd:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help":
		return true
	}
	return false
}
