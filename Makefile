# flowd: `make run` starts the server with the demo city; `make test` runs
# the whole suite. Both install what they need on a fresh machine.

GO       ?= go
export CGO_ENABLED := 1
LISTEN   ?= 127.0.0.1:8080
DATA     ?= ./flowd-data

.PHONY: all build run test test-short bench bench-quick pgo deps browser vet lint fuzz clean

all: build

build:
	$(GO) build -o flowd ./cmd/flowd

# deps installs what the tests need beyond Go: a C compiler for H3 (cgo),
# Debian's Chromium for the browser test and a CJK font, without which the
# sites' Chinese names show as empty boxes in the headless browser.
deps:
	@command -v gcc >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) || \
		echo "make: chromium could not be installed; the browser test will skip"
	@fc-list :lang=zh 2>/dev/null | grep -q . || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-wqy-zenhei) || \
		echo "make: no CJK font could be installed (fonts-wqy-zenhei); Chinese names will show as boxes"

run: build
	./flowd serve -listen $(LISTEN) -data $(DATA) -demo

# The packages' tests run one package at a time (-p 1): several measure
# time under a load of their own (10,000 slow connections, a browser
# drawing 20,000 hexagons), and beside another package's they failed on
# two cores. The test binaries are built first, in parallel.
test: deps lint
	$(GO) test -count=1 -run '^$$' ./... >/dev/null
	$(GO) test -p 1 -count=1 -timeout 9m ./...
	@# The NDJSON shape reader reads bodies through unsafe pointers:
	@# checkptr fails any read or pointer past a body (ingest/ndjson.go).
	$(GO) test -count=1 -gcflags=github.com/flowd/flowd/ingest=-d=checkptr -run 'Shape|Agrees' ./ingest
	@# A part's scan decodes its blocks on other goroutines, from the
	@# block cache and span buffers they share: under the race detector.
	$(GO) test -race -count=1 -run 'Span|Cached|SetAside|Damaged' ./storage

# lint: go vet and staticcheck (a pinned version, built on first use).
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

vet:
	$(GO) vet ./...

# Long runs: the full crash loop, fuzzing and the side-by-side benchmarks.
bench: build
	$(GO) run ./bench/cmd/flowd-bench -update BENCH.md
	$(GO) test -pgo=$(CURDIR)/cmd/flowd/default.pgo -run '^$$' -bench . -benchtime 2x -timeout 10m ./bench ./storage ./ingest ./geo ./api
	FLOWD_CRASH_RUNS=50 $(GO) test -count=1 -run TestCrashLoop -timeout 30m ./cmd/flowd

bench-quick: build
	$(GO) run ./bench/cmd/flowd-bench -quick
	$(GO) test -pgo=$(CURDIR)/cmd/flowd/default.pgo -run '^$$' -bench . -benchtime 1x ./storage ./ingest

# pgo refreshes the profile the compiler builds flowd by
# (cmd/flowd/default.pgo, which every `go build` of ./cmd/flowd uses: hot
# calls inlined, hot indirect calls made direct to their usual target).
# It is flowd's CPU profile in flowd-bench's ingest runs, merged: the
# city's day in requests of 10,000 and of 1,000 events, and the detector
# feed; with ingest's in-process benchmark of CSV counts (the same
# packages, so the same functions), which flowd-bench does not send. Run
# it after large changes to the ingest path; a stale profile still helps
# where the code has not moved, and never changes what flowd does. Count
# the new profile against the old before keeping it (bench/counted.sh
# with a checkout of each): on 3 Dec 2026 a fresh one counted 8.6 % more
# instructions on the detector feed than the profile it would replace, its
# inliner having put the line builders and reader into the decode loop,
# which then grew too big for plainRun and jsonNumber to be inlined.
pgo:
	@dir=$$(mktemp -d) && \
	for run in 10000 1000; do \
		GOFLAGS=-pgo=off FLOWD_CPUPROFILE=$$dir/$$run.prof $(GO) run ./bench/cmd/flowd-bench -only-ingest $$run -detectors 0 -runs 1 -peer off >/dev/null || exit 1; \
	done && \
	GOFLAGS=-pgo=off FLOWD_CPUPROFILE=$$dir/detectors.prof $(GO) run ./bench/cmd/flowd-bench -only-ingest detectors -runs 1 -detector-runs 1 -peer off >/dev/null && \
	$(GO) test -pgo=off -run '^$$' -bench 'PipelineCountsCSV' -benchtime 300x -o $$dir/ingest.test -cpuprofile $$dir/csv.prof ./ingest >/dev/null && \
	$(GO) tool pprof -proto $$dir/*.prof > cmd/flowd/default.pgo && rm -r $$dir && \
	echo "make: wrote cmd/flowd/default.pgo"

# fuzz runs every decoder's fuzz target for FUZZTIME each (seed corpora in
# the packages' testdata/fuzz); a failing input is written there too.
FUZZTIME ?= 10s
FUZZ_TARGETS = ingest:FuzzDecodeSwipes ingest:FuzzDecodeCounts ingest:FuzzDecodeFootfall ingest:FuzzScanFlat \
	geo:FuzzReadStations geo:FuzzReadSensors geo:FuzzReadSitesGeoJSON geo:FuzzParseGeoJSONArea geo:FuzzParseQueryShapes

# -fuzzminimizetime keeps the minimising of new interesting inputs short:
# left at its default (60 s) it can outlast -fuzztime and end the run with
# "context deadline exceeded" though nothing failed. A real failure writes
# its input under testdata/fuzz, which fails the target.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn ($(FUZZTIME))"; \
		before=$$(ls ./$$pkg/testdata/fuzz/$$fn 2>/dev/null | wc -l); \
		if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./$$pkg > fuzz.log 2>&1; then \
			after=$$(ls ./$$pkg/testdata/fuzz/$$fn 2>/dev/null | wc -l); \
			if [ "$$after" -gt "$$before" ] || ! grep -q "context deadline exceeded" fuzz.log; then cat fuzz.log; rm -f fuzz.log; exit 1; fi; \
			echo "fuzz $$fn: no failing input (the engine stalled at the end of its time)"; \
		else tail -1 fuzz.log; fi; \
	done; rm -f fuzz.log

clean:
	rm -rf flowd $(DATA)
