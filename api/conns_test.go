package api

import (
	"net"
	"testing"
	"time"
)

// fakeConn is a connection from a given address that records its closing.
type fakeConn struct {
	net.Conn // nil: only the methods below are called
	from     string
	closed   bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(c.from), Port: 1} }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

func TestConnsGiveWayToNewConnections(t *testing.T) {
	type step struct {
		from  string
		known bool // a request with a token is made on it at once
	}
	for _, tc := range []struct {
		name   string
		limits ConnLimits
		steps  []step
		// closed lists the steps whose connections end up closed; refused
		// those never served.
		closed, refused []int
	}{
		{"under every limit", ConnLimits{MaxConns: 4, MaxAnon: 4, MaxAnonPerIP: 4},
			[]step{{"10.0.0.1", false}, {"10.0.0.1", false}, {"10.0.0.2", false}}, nil, nil},
		{"one address past its limit closes its own oldest", ConnLimits{MaxAnonPerIP: 2},
			[]step{{"10.0.0.1", false}, {"10.0.0.2", false}, {"10.0.0.1", false}, {"10.0.0.1", false}, {"10.0.0.1", false}}, []int{0, 2}, nil},
		{"anonymous past their limit close the oldest of any address", ConnLimits{MaxAnon: 2},
			[]step{{"10.0.0.1", false}, {"10.0.0.2", false}, {"10.0.0.3", false}}, []int{0}, nil},
		{"known connections are never closed to make room", ConnLimits{MaxAnon: 1, MaxAnonPerIP: 1},
			[]step{{"10.0.0.1", true}, {"10.0.0.1", true}, {"10.0.0.1", false}, {"10.0.0.1", false}}, []int{2}, nil},
		{"all open: the oldest anonymous gives way", ConnLimits{MaxConns: 3},
			[]step{{"10.0.0.1", true}, {"10.0.0.2", false}, {"10.0.0.3", true}, {"10.0.0.4", false}}, []int{1}, nil},
		{"all open and known: the new one is refused", ConnLimits{MaxConns: 2},
			[]step{{"10.0.0.1", true}, {"10.0.0.2", true}, {"10.0.0.3", false}}, nil, []int{2}},
		{"IPv4 in IPv6 is the same address", ConnLimits{MaxAnonPerIP: 1},
			[]step{{"10.0.0.1", false}, {"::ffff:10.0.0.1", false}}, []int{0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := NewConns(tc.limits, nil)
			var conns []*fakeConn
			var refused []int
			for i, s := range tc.steps {
				fc := &fakeConn{from: s.from}
				conns = append(conns, fc)
				tracked, victims := cs.admit(fc)
				for _, v := range victims {
					v.Close()
				}
				if tracked == nil {
					refused = append(refused, i)
					continue
				}
				if s.known {
					tracked.setKnown()
				}
			}
			var closed []int
			for i, c := range conns {
				if c.closed {
					closed = append(closed, i)
				}
			}
			if !equalInts(closed, tc.closed) || !equalInts(refused, tc.refused) {
				t.Errorf("closed %v, refused %v; want closed %v, refused %v", closed, refused, tc.closed, tc.refused)
			}
			st := cs.Stats()
			if want := len(tc.steps) - len(tc.closed) - len(tc.refused); st.Open != want {
				t.Errorf("%d open; want %d", st.Open, want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestServerClosesSilentConnectionsWithoutAnAnswer: a connection that
// says nothing, or only part of a header, is closed at the header timeout
// with nothing written to it.
func TestServerClosesSilentConnectionsWithoutAnAnswer(t *testing.T) {
	s := &Server{router: newRouter(nil), Conns: NewConns(ConnLimits{HeaderTimeout: 200 * time.Millisecond}, nil)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(s.Conns.Listen(ln), 1<<20)
	defer s.Shutdown()
	for _, said := range []string{"", "GET / HTTP/1.1\r\nHost: x\r\nAuthor"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(said))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		c.Close()
		if n > 0 || err == nil {
			t.Errorf("after %q the server wrote %q; want the connection closed with nothing written", said, buf[:n])
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("after %q the connection was closed after %v; want about the header timeout", said, d)
		}
	}
}
