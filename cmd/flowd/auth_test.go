package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Test tokens; the token file holds only their hashes.
const (
	tokIngest = "test-ingest-token-0123456789"
	tokRead   = "test-read-token-0123456789"
	tokAdmin  = "test-admin-token-0123456789"
	tokFlood  = "test-flood-token-0123456789"
	tokWrong  = "test-wrong-token-0123456789"
)

func tokenLine(secret, role, name string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:]) + " " + role + " " + name + "\n"
}

// writeTokens writes a token file with one token of each role (and a
// second ingest token for floods) and returns its path.
func writeTokens(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	body := "# test tokens\n" + tokenLine(tokIngest, "ingest", "gate-feeder") + tokenLine(tokRead, "read", "planner") +
		tokenLine(tokAdmin, "admin", "ops") + tokenLine(tokFlood, "ingest", "flooder")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// authDo sends a request with a bearer token ("" for none) and optionally
// a Content-Encoding.
func authDo(t *testing.T, method, url, token, ctype string, body []byte, encoding ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if len(encoding) > 0 && encoding[0] != "" {
		req.Header.Set("Content-Encoding", encoding[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, data}
}

// endpoint is one call of the matrix and the least role that may make it
// ("" for an open endpoint).
type endpoint struct {
	method, path, ctype, body string
	need                      string
}

func matrixEndpoints(t0 time.Time) []endpoint {
	span := fmt.Sprintf("from=%d&to=%d", t0.Unix(), t0.Add(30*time.Minute).Unix())
	path := `[[30.2590,120.1640],[30.2810,120.1650]]`
	return []endpoint{
		{"GET", "/healthz", "", "", ""},
		{"GET", "/readyz", "", "", ""},
		{"GET", "/", "", "", ""},
		{"GET", "/app.js", "", "", ""},
		{"GET", "/metrics", "", "", "admin"},
		{"POST", "/api/v1/ingest/swipes", "application/x-ndjson", fmt.Sprintf(`{"time":%d,"card":"m1","dir":"in","station":"S1"}`+"\n", t0.Unix()), "ingest"},
		{"POST", "/api/v1/ingest/counts", "text/csv", fmt.Sprintf("time,sensor,class,count,interval\n%d,D1,car,3,60\n", t0.Unix()), "ingest"},
		{"POST", "/api/v1/ingest/footfall", "application/x-ndjson", fmt.Sprintf(`{"time":%d,"site":"lake","gate":"n","in":5,"out":1}`+"\n", t0.Unix()), "ingest"},
		{"POST", "/write?db=flowd&precision=s", "text/plain", fmt.Sprintf("counts,sensor=D1,class=car count=3i %d\n", t0.Unix()), "ingest"},
		{"POST", "/api/v2/write?org=o&bucket=b&precision=s", "", fmt.Sprintf("footfall,site=lake in=5i %d\n", t0.Unix()), "ingest"},
		{"GET", "/api/v1/series?metric=swipes_in&bbox=" + testBBox + "&" + span, "", "", "read"},
		{"GET", "/api/v1/series?metric=swipes_in&bbox=" + testBBox + "&format=csv&" + span, "", "", "read"},
		{"GET", "/api/v1/density?metric=swipes_in&bbox=" + testBBox + "&" + span, "", "", "read"},
		{"GET", "/api/v1/top?metric=swipes_in&" + span, "", "", "read"},
		{"POST", "/api/v1/corridor", "application/json", fmt.Sprintf(`{"path":%s,"metric":"swipes_in","from":%d,"to":%d,"step":"10m"}`, path, t0.Unix(), t0.Add(30*time.Minute).Unix()), "read"},
		{"POST", "/api/v1/path/density", "application/json", fmt.Sprintf(`{"paths":[{"id":"a","path":%s}],"metric":"swipes_in"}`, path), "read"},
		{"GET", "/api/v1/metrics", "", "", "read"},
		{"GET", "/api/v1/privacy", "", "", "read"},
		{"GET", "/api/v1/stations", "", "", "read"},
		{"GET", "/api/v1/sensors", "", "", "read"},
		{"GET", "/api/v1/sites", "", "", "read"},
		{"GET", "/api/v1/sites/status", "", "", "read"},
		{"GET", "/api/v1/sites/lake/status", "", "", "read"},
		{"GET", "/api/v1/alerts", "", "", "read"},
		{"GET", "/api/v1/live/stats", "", "", "read"},
		{"GET", "/api/v1/live/recent?from=-5m", "", "", "admin"},
		{"POST", "/api/v1/buckets", "application/x-www-form-urlencoded", "metric=swipes_in&from=-1h", "admin"},
		{"GET", "/api/v1/dashboard/config", "", "", "read"},
		{"PUT", "/api/v1/stations", "text/csv", testStations, "admin"},
		{"PUT", "/api/v1/sensors", "text/csv", testSensors, "admin"},
		{"PUT", "/api/v1/sites", "application/geo+json", testSites, "admin"},
	}
}

// TestEndpointRoleMatrix calls every endpoint with no token, an unknown
// token and each role's token against a real server, and checks that each
// is served exactly to the roles that may call it: 401 without a valid
// token, 403 for a role that may not, and a real answer otherwise.
func TestEndpointRoleMatrix(t *testing.T) {
	data := t.TempDir()
	c := startFlowd(t, data, append(registryFlags(t), "-tokens", writeTokens(t))...)
	t0 := testT0()
	callers := []struct{ name, token, role string }{
		{"no token", "", ""}, {"wrong token", tokWrong, ""},
		{"ingest", tokIngest, "ingest"}, {"read", tokRead, "read"}, {"admin", tokAdmin, "admin"},
	}
	for _, e := range matrixEndpoints(t0) {
		for _, who := range callers {
			r := authDo(t, e.method, c.url+e.path, who.token, e.ctype, []byte(e.body))
			allowed := e.need == "" || who.role == "admin" || who.role == e.need
			switch {
			case allowed && (r.status == 401 || r.status == 403):
				t.Errorf("%s %s as %s: refused, want served: %s", e.method, e.path, who.name, r)
			case allowed && r.status >= 400:
				t.Errorf("%s %s as %s: %s; want a real answer", e.method, e.path, who.name, r)
			case !allowed && who.role == "" && r.status != 401:
				t.Errorf("%s %s as %s: %s; want 401", e.method, e.path, who.name, r)
			case !allowed && who.role != "" && r.status != 403:
				t.Errorf("%s %s as %s: %s; want 403", e.method, e.path, who.name, r)
			}
			if r.status == 401 || r.status == 403 {
				var ans struct{ Error string }
				if json.Unmarshal(r.body, &ans) != nil || ans.Error == "" {
					t.Errorf("%s %s as %s: refusal is not a JSON error: %s", e.method, e.path, who.name, r)
				}
			}
		}
	}

	// The live WebSocket: the header, the token parameter (browsers), and
	// refusals of the upgrade itself.
	ws := "ws" + strings.TrimPrefix(c.url, "http") + "/api/v1/live"
	dial := func(url, token string) (int, error) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(url, h)
		if err == nil {
			conn.Close()
			return 101, nil
		}
		if resp != nil {
			return resp.StatusCode, err
		}
		return 0, err
	}
	for _, tc := range []struct {
		name, url, token string
		want             int
	}{
		{"no token", ws, "", 401},
		{"wrong token", ws, tokWrong, 401},
		{"ingest token", ws, tokIngest, 403},
		{"read token", ws, tokRead, 101},
		{"admin token", ws, tokAdmin, 101},
		{"read token parameter", ws + "?token=" + tokRead, "", 101},
		{"wrong token parameter", ws + "?token=" + tokWrong, "", 401},
	} {
		if got, err := dial(tc.url, tc.token); got != tc.want {
			t.Errorf("live upgrade with %s: %d (%v), want %d", tc.name, got, err, tc.want)
		}
	}
	// The token parameter is for the WebSocket only.
	if r := authDo(t, "GET", c.url+"/api/v1/stations?token="+tokRead, "", "", nil); r.status != 401 {
		t.Errorf("token parameter on a plain endpoint: %s; want 401", r)
	}

	// SIGHUP reloads the token file: a removed token stops working, an
	// added one starts, with no restart.
	start := flagValue(c, "-tokens")
	if err := os.WriteFile(start, []byte(tokenLine(tokAdmin, "admin", "ops")+tokenLine(tokWrong, "read", "newcomer")), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool {
		return authDo(t, "GET", c.url+"/api/v1/stations", tokWrong, "", nil).status == 200
	})
	if r := authDo(t, "GET", c.url+"/api/v1/stations", tokRead, "", nil); r.status != 401 {
		t.Errorf("removed token after SIGHUP: %s; want 401", r)
	}
	// A broken file on reload keeps the previous tokens.
	os.WriteFile(start, []byte("not a token file\n"), 0o600)
	c.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(c.Logs(), "keeping the previous tokens") })
	if r := authDo(t, "GET", c.url+"/api/v1/stations", tokWrong, "", nil); r.status != 200 {
		t.Errorf("after a failed reload: %s; want the previous tokens to work", r)
	}
	c.stop()

	// The audit log holds the registry changes and admin calls with the
	// token's name, and the reloads.
	audit, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var puts, admin, reloads int
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var rec struct {
			Who, What string
			Details   map[string]any
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case rec.What == "registry.change" && rec.Who == "ops" && rec.Details["status"] == 200.0:
			puts++
		case rec.What == "admin.request" && rec.Who == "ops":
			admin++
		case rec.What == "reload":
			reloads++
		}
	}
	if puts != 3 || admin < 10 || reloads != 2 {
		t.Errorf("audit log: %d registry changes (want 3), %d admin requests (want ≥ 10), %d reloads (want 2):\n%s", puts, admin, reloads, audit)
	}
}

// flagValue returns the value given to a flag on the child's command line.
func flagValue(c *child, name string) string {
	for i, a := range c.cmd.Args {
		if a == name && i+1 < len(c.cmd.Args) {
			return c.cmd.Args[i+1]
		}
	}
	c.t.Fatalf("flowd started without %s", name)
	return ""
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRefusesToListenBeyondLoopbackWithoutTokens checks the start-up rule
// and its -insecure override.
func TestRefusesToListenBeyondLoopbackWithoutTokens(t *testing.T) {
	out, err := runFlowd(t, "serve", "-listen", "0.0.0.0:0", "-data", t.TempDir())
	if err == nil || !strings.Contains(out, "no -tokens") {
		t.Fatalf("listening on 0.0.0.0 without tokens: err %v, output:\n%s", err, out)
	}
	c := startFlowd(t, t.TempDir(), "-listen", "0.0.0.0:0", "-insecure")
	// The warning is on stderr, the address the harness waits for on
	// stdout: the two streams are read apart, so the warning may come after.
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(c.Logs(), "WITHOUT AUTHENTICATION") })
	c.stop()
	c = startFlowd(t, t.TempDir(), "-listen", "0.0.0.0:0", "-tokens", writeTokens(t))
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	if r := authDo(t, "GET", "http://127.0.0.1:"+u.Port()+"/api/v1/stations", "", "", nil); r.status != 401 {
		t.Errorf("0.0.0.0 with tokens, no token: %s; want 401", r)
	}
	c.stop()
}

// runFlowd runs the flowd binary to completion with a timeout.
func runFlowd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(flowdBin, args...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("flowd %v did not exit within 30 s:\n%s", args, out)
	}
	return string(out), err
}

// TestRawCardIDsReachNoOutput extends the raw-id test to every output a
// caller or an operator can see: every read endpoint's JSON and CSV, the
// Prometheus metrics, the live WebSocket frames, the logs, the audit log
// and every file in the data directory.
func TestRawCardIDsReachNoOutput(t *testing.T) {
	data := t.TempDir()
	c := startFlowd(t, data, append(registryFlags(t), "-tokens", writeTokens(t), "-live-tick", "100ms")...)
	t0 := time.Now().UTC().Truncate(time.Minute)

	// An admin's live feed: the one that carries swipes per cell.
	live, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.url, "http")+"/api/v1/live?token="+tokAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.WriteJSON(map[string]any{"type": "subscribe", "bbox": [4]float64{120.10, 30.20, 120.20, 30.30}, "res": 9, "metric": "swipes_in"})
	var frames bytes.Buffer
	framesDone := make(chan struct{})
	go func() {
		defer close(framesDone)
		for {
			live.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := live.ReadMessage()
			if err != nil {
				return
			}
			frames.Write(msg)
			frames.WriteByte('\n')
		}
	}()

	var cards []string
	var nd, csv strings.Builder
	csv.WriteString("time,card,dir,station\n")
	for i := range 40 {
		in := fmt.Sprintf("RAWCARD%06dIN", i)
		cards = append(cards, in)
		// In three minutes ago, out now: within the live window, and not
		// in the future, which ingest refuses.
		fmt.Fprintf(&nd, `{"time":%d,"card":%q,"dir":"in","station":"S1"}`+"\n", t0.Add(-3*time.Minute).Unix(), in)
		fmt.Fprintf(&nd, `{"time":%d,"card":%q,"dir":"out","station":"S2"}`+"\n", t0.Unix(), in)
	}
	nd.WriteString(`{"time":"bad","card":"RAWCARD-BADTIME","dir":"in","station":"S1"}` + "\n")
	fmt.Fprintf(&nd, `{"time":%d,"card":"RAWCARD-BADSTATION","dir":"in","station":"NOWHERE"}`+"\n", t0.Unix())
	nd.WriteString(`{"time":1,"card":"RAWCARD-BROKEN-JSON","dir":` + "\n")
	fmt.Fprintf(&csv, "%d,RAWCARD-CSV-1,in,S1\n%d,RAWCARD-CSV-2,sideways,S1\n", t0.Unix(), t0.Unix())
	cards = append(cards, "RAWCARD-BADTIME", "RAWCARD-BADSTATION", "RAWCARD-BROKEN-JSON", "RAWCARD-CSV-1", "RAWCARD-CSV-2")

	var outputs bytes.Buffer
	collect := func(what string, r response) {
		fmt.Fprintf(&outputs, "== %s: %d\n%s\n", what, r.status, r.body)
	}
	for _, tok := range []string{tokIngest, tokAdmin} {
		collect("ingest ndjson", authDo(t, "POST", c.url+"/api/v1/ingest/swipes", tok, "application/x-ndjson", []byte(nd.String())))
		collect("ingest csv", authDo(t, "POST", c.url+"/api/v1/ingest/swipes", tok, "text/csv", []byte(csv.String())))
	}
	time.Sleep(500 * time.Millisecond) // a few live ticks
	span := fmt.Sprintf("from=%d&to=%d", t0.Add(-time.Hour).Unix(), t0.Add(time.Hour).Unix())
	for _, e := range matrixEndpoints(t0) {
		if e.method == "GET" && e.need != "" {
			collect(e.path, authDo(t, "GET", c.url+e.path, tokAdmin, "", nil))
		}
	}
	for _, p := range []string{
		"/api/v1/series?metric=swipes_in&bbox=" + testBBox + "&format=csv&" + span,
		"/api/v1/density?metric=swipes_in&bbox=" + testBBox + "&format=geojson&" + span,
		"/api/v1/top?metric=swipes_in&format=csv&" + span,
		"/api/v1/od?" + span,
		"/api/v1/od?format=csv&" + span,
		"/api/v1/distinct?bbox=" + testBBox + "&" + span,
	} {
		for _, tok := range []string{tokRead, tokAdmin} {
			collect(p, authDo(t, "GET", c.url+p, tok, "", nil))
		}
	}
	collect("corridor csv", authDo(t, "POST", c.url+"/api/v1/corridor?format=csv", tokRead, "application/json",
		[]byte(fmt.Sprintf(`{"path":[[30.2590,120.1640],[30.2810,120.1650]],"metric":"swipes_in","from":%d,"to":%d,"step":"10m"}`, t0.Add(-time.Hour).Unix(), t0.Add(time.Hour).Unix()))))
	c.cmd.Process.Signal(syscall.SIGHUP) // a reload, into the audit log
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(c.Logs(), "reload:") })
	live.Close()
	<-framesDone
	c.kill()
	c2 := startFlowd(t, data, append(registryFlags(t), "-tokens", flagValue(c, "-tokens"))...) // replays the WAL
	c2.stop()

	if frames.Len() == 0 {
		t.Error("no live frame arrived; the WebSocket output was not checked")
	}
	if !strings.Contains(outputs.String(), `"accepted":80`) {
		t.Fatalf("the swipes were not accepted:\n%.2000s", outputs.String())
	}
	sources := map[string]string{"HTTP answers": outputs.String(), "live frames": frames.String(), "logs": c.Logs() + c2.Logs()}
	filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			content, _ := os.ReadFile(path)
			sources[path] = string(content)
		}
		return nil
	})
	if _, ok := sources[filepath.Join(data, "audit.log")]; !ok {
		t.Error("no audit log was written")
	}
	for where, text := range sources {
		for _, card := range cards {
			if strings.Contains(text, card) {
				t.Errorf("raw card id %s found in %s", card, where)
			}
		}
		if strings.Contains(text, "RAWCARD") {
			t.Errorf("a fragment of a raw card id found in %s", where)
		}
	}
}

// TestTLSAndCertificateReload serves HTTPS from a certificate and swaps it
// on SIGHUP without a restart.
func TestTLSAndCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, "flowd-first")
	c := startFlowd(t, t.TempDir(), "-tls-cert", certFile, "-tls-key", keyFile, "-tokens", writeTokens(t))
	if !strings.HasPrefix(c.url, "https://") {
		t.Fatalf("listening on %s, want https", c.url)
	}
	serial := func() string {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequest("GET", c.url+"/api/v1/stations", nil)
		req.Header.Set("Authorization", "Bearer "+tokRead)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("HTTPS request: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HTTPS request: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := serial(); got != first {
		t.Fatalf("certificate %q, want %q", got, first)
	}
	if r, err := http.Get(strings.Replace(c.url, "https", "http", 1) + "/healthz"); err == nil && r.StatusCode == 200 {
		t.Error("plain HTTP answered on the TLS listener")
	}
	second := writeCert(t, certFile, keyFile, "flowd-second")
	c.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return serial() == second })
	c.stop()
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 with the
// given common name.
func writeCert(t *testing.T, certFile, keyFile, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cn
}

// TestTokenCommand makes a token with `flowd token`, starts a server with
// the file it wrote, and calls it with the printed token.
func TestTokenCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	cmd := exec.Command(flowdBin, "token", "-role", "read", "-name", "planner", "-file", file)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("flowd token: %v", err)
	}
	secret := strings.TrimSpace(string(out))
	content, _ := os.ReadFile(file)
	if strings.Contains(string(content), secret) || !strings.Contains(string(content), " read planner") {
		t.Fatalf("token file holds %q for token %q; want its hash, role and name", content, secret)
	}
	c := startFlowd(t, t.TempDir(), "-tokens", file)
	if r := authDo(t, "GET", c.url+"/api/v1/stations", secret, "", nil); r.status != 200 {
		t.Errorf("the new token: %s", r)
	}
	if r := authDo(t, "PUT", c.url+"/api/v1/stations", secret, "text/csv", []byte(testStations)); r.status != 403 {
		t.Errorf("the new read token on a PUT: %s; want 403", r)
	}
	c.stop()
}

// TestLocalServerRefusesOtherSites starts flowd on loopback without
// tokens, where every caller is an admin, and checks that a web page on
// another site cannot use it through the visitor's browser: not by DNS
// rebinding (its own name in Host), not by a request carrying its Origin
// (the live WebSocket among them), not by a POST without a Content-Type,
// which a page may send anywhere without asking.
func TestLocalServerRefusesOtherSites(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-allow-host", "flowd.lan")...)
	u, _ := url.Parse(c.url)
	port := u.Port()
	swipe := []byte(fmt.Sprintf(`{"time":%d,"card":"c1","dir":"in","station":"S1"}`+"\n", testT0().Unix()))
	send := func(method, path, host, origin, ctype string, body []byte) int {
		req, _ := http.NewRequest(method, c.url+path, bytes.NewReader(body))
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, method, path, host, origin, ctype string
		want                                    int
	}{
		{"Host 127.0.0.1", "GET", "/api/v1/stations", "127.0.0.1:" + port, "", "", 200},
		{"Host localhost", "GET", "/api/v1/stations", "localhost:" + port, "", "", 200},
		{"Host [::1]", "GET", "/api/v1/stations", "[::1]:" + port, "", "", 200},
		{"Host named by -allow-host", "GET", "/api/v1/stations", "FLOWD.lan:" + port, "", "", 200},
		{"Host of another site (DNS rebinding)", "GET", "/api/v1/stations", "attacker.example:" + port, "", "", 403},
		{"Host of another site, the page", "GET", "/", "attacker.example", "", "", 403},
		{"same Origin", "POST", "/api/v1/ingest/swipes", "127.0.0.1:" + port, "http://127.0.0.1:" + port, "application/x-ndjson", 200},
		{"Origin of another site", "POST", "/api/v1/ingest/swipes", "127.0.0.1:" + port, "https://attacker.example", "application/x-ndjson", 403},
		{"Origin null (a sandboxed page)", "POST", "/api/v1/ingest/swipes", "127.0.0.1:" + port, "null", "application/x-ndjson", 403},
		{"Origin of another port", "GET", "/api/v1/stations", "127.0.0.1:" + port, "http://127.0.0.1:1", "", 403},
		{"no Content-Type", "POST", "/api/v1/ingest/swipes", "127.0.0.1:" + port, "", "", 415},
		{"text/plain, a simple request", "POST", "/api/v1/ingest/swipes", "127.0.0.1:" + port, "", "text/plain", 415},
	} {
		if got := send(tc.method, tc.path, tc.host, tc.origin, tc.ctype, swipe); got != tc.want {
			t.Errorf("%s: %d; want %d", tc.name, got, tc.want)
		}
	}
	ws := "ws" + strings.TrimPrefix(c.url, "http") + "/api/v1/live"
	for _, tc := range []struct {
		name, origin string
		ok           bool
	}{
		{"the live WebSocket from the dashboard", c.url, true},
		{"the live WebSocket without Origin (not a browser)", "", true},
		{"the live WebSocket from another site", "https://attacker.example", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(ws, h)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != tc.ok || (!tc.ok && (resp == nil || resp.StatusCode != 403)) {
			t.Errorf("%s: %v %v; want ok %v, else 403", tc.name, resp, err, tc.ok)
		}
	}
}

// auditRecords reads a stopped server's audit log.
func auditRecords(t *testing.T, data string) []struct {
	Who, What string
	Details   map[string]any
} {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Who, What string
		Details   map[string]any
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Who, What string
			Details   map[string]any
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestRefusalsAreAudited: a registry change refused for its token, and a
// failed authentication, are in the audit log; a flood of failures adds a
// bounded number of records, the next one counting those left out.
func TestRefusalsAreAudited(t *testing.T) {
	data := t.TempDir()
	c := startFlowd(t, data, append(registryFlags(t), "-tokens", writeTokens(t))...)
	if r := authDo(t, "PUT", c.url+"/api/v1/stations", tokRead, "text/csv", []byte(testStations)); r.status != 403 {
		t.Fatalf("PUT with a read token: %s", r)
	}
	if r := authDo(t, "PUT", c.url+"/api/v1/sites", "", "application/geo+json", []byte(testSites)); r.status != 401 {
		t.Fatalf("PUT without a token: %s", r)
	}
	if r := authDo(t, "GET", c.url+"/api/v1/series", tokIngest, "", nil); r.status != 403 {
		t.Fatalf("a query with an ingest token: %s", r)
	}
	for range 500 {
		authDo(t, "GET", c.url+"/api/v1/stations", tokWrong, "", nil)
	}
	time.Sleep(1100 * time.Millisecond)
	authDo(t, "GET", c.url+"/api/v1/stations?token="+tokRead, tokWrong, "", nil)
	c.stop()

	var changes, failed int
	var suppressed float64
	for _, rec := range auditRecords(t, data) {
		switch {
		case rec.What == "registry.change" && rec.Who == "planner" && rec.Details["status"] == 403.0 && rec.Details["path"] == "/api/v1/stations":
			changes++
		case rec.What == "registry.change" && rec.Details["status"] == 401.0 && rec.Details["path"] == "/api/v1/sites":
			changes++
		case rec.What == "auth.failed":
			failed++
			if n, ok := rec.Details["suppressed_before"].(float64); ok {
				suppressed += n
			}
			if rec.Details["reason"] == nil || rec.Details["remote"] == nil {
				t.Errorf("auth.failed without reason or remote: %+v", rec)
			}
		}
	}
	if changes != 2 {
		t.Errorf("%d refused registry changes audited; want 2", changes)
	}
	if failed < 3 || failed > 40 || failed+int(suppressed) != 502 {
		t.Errorf("%d auth.failed records, %v more counted as left out; want 3 to 40 records accounting for all 502 failures", failed, suppressed)
	}
	if raw, _ := os.ReadFile(filepath.Join(data, "audit.log")); strings.Contains(string(raw), tokWrong) || strings.Contains(string(raw), "token=") {
		t.Errorf("the audit log quotes a token or a query string")
	}
}

// TestRevokedTokenLosesItsLiveFeed removes a token from the token file
// while it holds a live WebSocket: within a second of the reload the
// connection is closed, and another token's feed goes on.
func TestRevokedTokenLosesItsLiveFeed(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t), "-live-tick", "100ms")...)
	ws := "ws" + strings.TrimPrefix(c.url, "http") + "/api/v1/live?token="
	open := func(token string) chan error {
		conn, _, err := websocket.DefaultDialer.Dial(ws+token, nil)
		if err != nil {
			t.Fatalf("live connection: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.WriteJSON(map[string]any{"type": "subscribe", "bbox": [4]float64{120.10, 30.20, 120.20, 30.30}, "res": 9, "metric": "swipes_in"})
		ended := make(chan error, 1)
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
		return ended
	}
	revoked, kept := open(tokRead), open(tokAdmin)
	time.Sleep(300 * time.Millisecond) // both get their first frames
	tokens := flagValue(c, "-tokens")
	if err := os.WriteFile(tokens, []byte(tokenLine(tokAdmin, "admin", "ops")), 0o600); err != nil {
		t.Fatal(err)
	}
	hup := time.Now()
	c.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case err := <-revoked:
		t.Logf("the revoked token's feed ended %v after SIGHUP: %v", time.Since(hup).Round(time.Millisecond), err)
		if d := time.Since(hup); d > 1500*time.Millisecond {
			t.Errorf("the revoked token's feed ended %v after SIGHUP; want within a second of the reload", d)
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Errorf("the revoked token's feed ended with %v; want a close frame 1008 (policy violation)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked token's live feed still streams 5 s after the reload")
	}
	select {
	case err := <-kept:
		t.Errorf("the remaining token's feed ended too: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	// The hub let the revoked client go: one client is left.
	var stats struct{ Clients int }
	authDo(t, "GET", c.url+"/api/v1/live/stats", tokAdmin, "", nil).json(t, &stats)
	if stats.Clients != 1 {
		t.Errorf("the live hub holds %d clients after the revocation; want 1", stats.Clients)
	}
}

// TestLiveFeedKeepsPeopleFromReadTokens: the live map's frames are exact per
// cell and second, below the privacy layer's floors, so a read token may
// not subscribe to a metric that counts people (swipes), nor to one that
// links a card's taps (trips); detector counts it may. An admin sees
// swipes live.
func TestLiveFeedKeepsPeopleFromReadTokens(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t), "-live-tick", "100ms")...)
	bbox := [4]float64{120.10, 30.20, 120.20, 30.30}
	subscribe := func(token, metric string) map[string]any {
		t.Helper()
		live, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.url, "http")+"/api/v1/live?token="+token, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		live.WriteJSON(map[string]any{"type": "subscribe", "bbox": bbox, "res": 9, "metric": metric})
		for {
			live.SetReadDeadline(time.Now().Add(5 * time.Second))
			var m map[string]any
			if err := live.ReadJSON(&m); err != nil {
				t.Fatalf("%s subscribing to %s: %v", token, metric, err)
			}
			if m["type"] == "error" || m["type"] == "cells" {
				return m
			}
		}
	}
	for _, tc := range []struct {
		token, metric string
		refused       string // a word of the error, or "" for frames
	}{
		{tokRead, "swipes_in", "counts people"},
		{tokRead, "swipes_out", "counts people"},
		{tokRead, "unmatched_in", "counts people"},
		{tokRead, "trips", "not on the live feed"},
		{tokRead, "count_car", ""},
		{tokAdmin, "swipes_in", ""},
		{tokAdmin, "trips", "not on the live feed"},
	} {
		m := subscribe(tc.token, tc.metric)
		errText, _ := m["error"].(string)
		switch {
		case tc.refused == "" && m["type"] != "cells":
			t.Errorf("%s on the live feed with the %s token: %v, want frames", tc.metric, tc.token, m)
		case tc.refused != "" && !strings.Contains(errText, tc.refused):
			t.Errorf("%s on the live feed with the %s token: %v, want an error saying %q", tc.metric, tc.token, m, tc.refused)
		}
	}
}
